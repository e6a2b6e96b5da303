package aether.runtime.exchange;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The other process of the cross-process tests and benchmark: connects to the parent's media driver, receives
 * tensors {@code (i, 1)} for {@code i < count} on {@code inStream}, and answers each on {@code outStream} as
 * {@code (i, 2)}: with the same bytes ({@code echo}) or with an empty payload ({@code ack}). Then it waits for the
 * empty tensor {@code (-1, 0)} that says the parent has everything, and exits 0; any failure exits 1.
 *
 * <pre>ExchangePeerMain aeronDir inStream outStream echo|ack count timeoutMs</pre>
 */
public final class ExchangePeerMain {

    private ExchangePeerMain() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 6 || !(args[3].equals("echo") || args[3].equals("ack"))) {
            System.err.println("usage: ExchangePeerMain aeronDir inStream outStream echo|ack count timeoutMs");
            System.exit(2);
        }
        String dir = args[0];
        int inStream = Integer.parseInt(args[1]);
        int outStream = Integer.parseInt(args[2]);
        boolean echo = args[3].equals("echo");
        int count = Integer.parseInt(args[4]);
        Duration timeout = Duration.ofMillis(Long.parseLong(args[5]));
        int status = 1;
        try (Arena arena = Arena.ofShared();
                ExchangeNode node = ExchangeNode.connect(dir, ExchangeConfig.defaults().withSendTimeout(timeout));
                TensorReceiver in = node.newReceiver(ExchangeChannels.ipc(), inStream, TensorAllocator.of(arena));
                TensorSender out = node.newSender(ExchangeChannels.ipc(), outStream)) {
            MemorySegment empty = MemorySegment.ofArray(new byte[0]);
            System.out.println("ready pid=" + ProcessHandle.current().pid());
            for (int i = 0; i < count; i++) {
                MemorySegment data = in.expect(i, 1, timeout).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
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
}
