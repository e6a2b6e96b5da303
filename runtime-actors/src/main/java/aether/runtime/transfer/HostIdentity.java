package aether.runtime.transfer;

import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Which machine (and boot) this JVM runs on: two nodes with the same identity share {@code /dev/shm}, so one can
 * reach the other's media driver and tensors can move over Aeron IPC. The boot id keeps two containers that share a
 * host name from mistaking each other for the same machine only when their kernels differ; containers on one kernel
 * that do not share {@code /dev/shm} are caught later, when the driver directory is not found.
 */
final class HostIdentity {

    private HostIdentity() {}

    static String current() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            host = System.getenv().getOrDefault("HOSTNAME", "unknown-host");
        }
        Path bootId = Path.of("/proc/sys/kernel/random/boot_id");
        try {
            return host + "/" + Files.readString(bootId).strip();
        } catch (IOException | SecurityException e) {
            return host;
        }
    }
}
