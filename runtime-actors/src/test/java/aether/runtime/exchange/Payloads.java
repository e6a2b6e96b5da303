package aether.runtime.exchange;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;

/** Test payloads: random bytes from a seed, and their CRC32C computed independently of the exchange. */
final class Payloads {

    private Payloads() {}

    static MemorySegment random(Arena arena, long size, long seed) {
        MemorySegment s = arena.allocate(size, 64);
        SplittableRandom random = new SplittableRandom(seed);
        long words = size / Long.BYTES;
        for (long i = 0; i < words; i++) {
            s.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i, random.nextLong());
        }
        for (long i = words * Long.BYTES; i < size; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
        }
        return s;
    }

    /** CRC32C of the whole segment, in slices (a ByteBuffer holds at most 2 GiB). */
    static long crc32c(MemorySegment s) {
        CRC32C crc = new CRC32C();
        long slice = 1L << 30;
        for (long at = 0; at < s.byteSize(); at += slice) {
            crc.update(s.asSlice(at, Math.min(slice, s.byteSize() - at)).asByteBuffer());
        }
        return crc.getValue();
    }

    /** A UDP port on 127.0.0.1 that was free a moment ago. */
    static int freeUdpPort() {
        try (DatagramSocket socket = new DatagramSocket(0, InetAddress.getByName("127.0.0.1"))) {
            return socket.getLocalPort();
        } catch (SocketException | UnknownHostException e) {
            throw new IllegalStateException("no free UDP port on 127.0.0.1", e);
        }
    }
}
