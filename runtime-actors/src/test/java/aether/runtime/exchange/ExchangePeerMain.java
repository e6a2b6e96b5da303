package aether.runtime.exchange;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The other process of the cross-process tests and benchmark: connects to the parent's media driver, receives
 * tensors {@code (i, 1)} for {@code i < count} on {@code inStream}, and answers each on {@code outStream} as
 * {@code (i, 2)}: with the same bytes ({@code echo}) or with an empty payload ({@code ack}). Then it waits for the
 * empty tensor {@code (-1, 0)} that says the parent has everything, and exits 0; any failure exits 1. In mode
 * {@code die} it sends tensor {@code (0, 2)} of {@code count} random bytes instead and halts the JVM (exit 3) in the
 * middle of it, as a crashing worker would.
 *
 * <pre>ExchangePeerMain aeronDir inStream outStream echo|ack|die count timeoutMs [maxIdleMicros]</pre>
 */
public final class ExchangePeerMain {

    private ExchangePeerMain() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 6 || args.length > 7 || !args[3].matches("echo|ack|die")) {
            System.err.println("usage: ExchangePeerMain aeronDir inStream outStream echo|ack|die count timeoutMs [maxIdleMicros]");
            System.exit(2);
        }
        String dir = args[0];
        int inStream = Integer.parseInt(args[1]);
        int outStream = Integer.parseInt(args[2]);
        boolean echo = args[3].equals("echo");
        int count = Integer.parseInt(args[4]);
        Duration timeout = Duration.ofMillis(Long.parseLong(args[5]));
        ExchangeConfig config = ExchangeConfig.defaults().withSendTimeout(timeout);
        if (args.length == 7) {
            config = config.withMaxIdle(Duration.ofNanos(1000 * Long.parseLong(args[6])));
        }
        if (args[3].equals("die")) {
            dieMidTransfer(dir, outStream, Integer.parseInt(args[4]), config);
        }
        int status = 1;
        try (Arena arena = Arena.ofShared();
                ExchangeNode node = ExchangeNode.connect(dir, config);
                TensorReceiver in = node.newReceiver(ExchangeChannels.ipc(), inStream, TensorAllocator.of(arena));
                TensorSender out = node.newSender(ExchangeChannels.ipc(), outStream)) {
            MemorySegment empty = MemorySegment.ofArray(new byte[0]);
            TensorAllocator reused = reusing(arena);     // acks only: the bytes are checked per frame, then dropped
            System.out.println("ready pid=" + ProcessHandle.current().pid());
            for (int i = 0; i < count; i++) {
                MemorySegment data = (echo ? in.expect(i, 1, timeout) : in.expect(i, 1, reused, timeout))
                        .get(timeout.toMillis(), TimeUnit.MILLISECONDS);
                out.send(i, 2, echo ? data : empty).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
                if (echo) {
                    System.out.printf("tensor %d: %d bytes, crc32c %08x%n", i, data.byteSize(), Payloads.crc32c(data));
                }
            }
            in.expect(-1, 0, timeout).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            System.out.println("done");
            status = 0;
        } catch (Exception e) {
            e.printStackTrace();
        }
        System.exit(status);
    }

    private static void dieMidTransfer(String dir, int outStream, long size, ExchangeConfig config) throws Exception {
        Arena arena = Arena.ofShared();
        ExchangeNode node = ExchangeNode.connect(dir, config);
        AeronTensorSender out = node.newAeronSender(ExchangeChannels.ipc(), outStream);
        out.hook((tensorId, version, at, chunk, frame, offset) -> {
            if (at >= size / 2) {
                System.out.println("halting at byte " + at);
                System.out.flush();
                Runtime.getRuntime().halt(3);   // no shutdown hooks, no close: the publication is left as a crash leaves it
            }
            return true;
        });
        out.send(0, 2, Payloads.random(arena, size, 7)).get(config.sendTimeout().toMillis(), TimeUnit.MILLISECONDS);
        System.out.println("sent everything: the hook did not halt");
        System.exit(1);
    }

    /** One destination, grown when needed: a benchmark peer should not measure first-touch page faults. */
    private static TensorAllocator reusing(Arena arena) {
        MemorySegment[] buffer = {MemorySegment.NULL};
        return (tensorId, version, byteLength) -> {
            if (buffer[0].byteSize() < byteLength) {
                buffer[0] = arena.allocate(byteLength, 64);
                buffer[0].fill((byte) 0);
            }
            return buffer[0];
        };
    }
}
