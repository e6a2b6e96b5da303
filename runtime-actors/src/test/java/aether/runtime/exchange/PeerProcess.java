package aether.runtime.exchange;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A second JVM running {@link ExchangePeerMain}: the same java binary, class path and product flags as this one.
 * Close it in a finally (or try-with-resources): that kills it if it is still running.
 */
public final class PeerProcess implements AutoCloseable {

    private final Process process;
    private final Path log;

    private PeerProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    public static PeerProcess start(String... args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElseThrow(
                () -> new IllegalStateException("cannot tell which java binary runs this JVM")));
        for (String flag : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            // the product's flags (surefire argLine) travel; agents, debuggers and heap settings do not
            if (flag.startsWith("--add-") || flag.startsWith("--enable-native-access")
                    || flag.startsWith("--sun-misc") || flag.startsWith("-Xss")) {
                command.add(flag);
            }
        }
        command.add("-Xmx256m");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(ExchangePeerMain.class.getName());
        command.addAll(List.of(args));
        Path log = Files.createTempFile("aether-exchange-peer-", ".log");
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        return new PeerProcess(process, log);
    }

    /** Waits for the peer to exit; its exit code, or -1 if it is still running after {@code seconds}. */
    public int awaitExit(long seconds) throws InterruptedException {
        return process.waitFor(seconds, TimeUnit.SECONDS) ? process.exitValue() : -1;
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public long pid() {
        return process.pid();
    }

    public String output() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no output: " + e + ")";
        }
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
        try {
            Files.deleteIfExists(log);
        } catch (IOException ignored) {
            // a temp file: the OS cleans up what we cannot
        }
    }
}
