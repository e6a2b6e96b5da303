package aether.runtime.exchange.bench;

import aether.runtime.exchange.ExchangeChannels;
import aether.runtime.exchange.ExchangeConfig;
import aether.runtime.exchange.ExchangeNode;
import aether.runtime.exchange.PeerProcess;
import aether.runtime.exchange.TensorAllocator;
import aether.runtime.exchange.TensorReceiver;
import aether.runtime.exchange.TensorSender;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Tensor transfer latency and throughput over the exchange, next to an in-process memcpy of the same size measured in
 * the same run; prints a Markdown table. Each transfer is timed from {@code send} to the moment the receiving side
 * completes its future (timestamped on the receiving agent thread, so the benchmark thread's wake-up is not counted);
 * transfers run one after another, so GiB/s is size / p50 for a single transfer, not a pipelined stream.
 *
 * <ul>
 *   <li>IPC, other process: a second JVM ({@code ExchangePeerMain ack}) attached to this process's driver receives
 *       each tensor and answers with an empty tensor; the time includes that empty reply.</li>
 *   <li>IPC, two nodes: a second node in this JVM attached to the same driver (its own agent thread).</li>
 *   <li>UDP loopback: two nodes with their own embedded drivers, 127.0.0.1.</li>
 * </ul>
 *
 * Run: {@code scripts/jmh runtime-actors --main aether.runtime.exchange.bench.ExchangeBenchmark [--quick]}
 */
public final class ExchangeBenchmark {

    private static final Duration WAIT = Duration.ofSeconds(120);
    /** Agents and drivers park at most this long when idle: a sporadic transfer waits up to this for each hop. */
    private static final Duration MAX_IDLE = Duration.ofNanos(100_000);
    private static final ExchangeConfig CONFIG = ExchangeConfig.defaults().withSendTimeout(WAIT).withMaxIdle(MAX_IDLE);
    private static final long MIB = 1 << 20;

    private record Row(String transport, long size, int transfers, double p50Us, double p99Us) {
        double gibPerS() {
            return size / (p50Us * 1e-6) / (1L << 30);
        }
    }

    private ExchangeBenchmark() {}

    public static void main(String[] args) throws Exception {
        boolean quick = Arrays.asList(args).contains("--quick");
        long[] sizes = {MIB, 64 * MIB};
        int[] transfers = quick ? new int[] {40, 6} : new int[] {400, 40};
        int[] warmups = quick ? new int[] {300, 4} : new int[] {1000, 10};   // enough frames for C2 to compile the hot loops
        List<Row> rows = new ArrayList<>();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment[] payloads = new MemorySegment[sizes.length];
            for (int s = 0; s < sizes.length; s++) {
                payloads[s] = random(arena, sizes[s], 42 + s);
            }
            for (int s = 0; s < sizes.length; s++) {
                rows.add(memcpy(arena, payloads[s], transfers[s], warmups[s]));
            }
            try (ExchangeNode node = ExchangeNode.launchEmbedded(CONFIG)) {
                rows.addAll(crossProcessIpc(node, arena, payloads, transfers, warmups));
                try (ExchangeNode peer = ExchangeNode.connect(node.aeronDirectory(), CONFIG)) {
                    rows.addAll(between(node, peer, ExchangeChannels.ipc(), 4001, "IPC, two nodes in one JVM", arena,
                            payloads, transfers, warmups));
                }
            }
            try (ExchangeNode a = ExchangeNode.launchEmbedded(CONFIG);
                    ExchangeNode b = ExchangeNode.launchEmbedded(CONFIG)) {
                rows.addAll(between(a, b, ExchangeChannels.udp("127.0.0.1", freeUdpPort()), 4002,
                        "UDP loopback, two drivers", arena, payloads, transfers, warmups));
            }
        }
        print(rows, quick);
    }

    private static Row memcpy(Arena arena, MemorySegment payload, int n, int warmup) {
        MemorySegment dst = arena.allocate(payload.byteSize(), 64);
        dst.fill((byte) 0);
        long[] ns = new long[n];
        for (int i = -warmup; i < n; i++) {
            long t0 = System.nanoTime();
            MemorySegment.copy(payload, 0, dst, 0, payload.byteSize());
            long t1 = System.nanoTime();
            if (i >= 0) {
                ns[i] = t1 - t0;
            }
        }
        check("memcpy", payload, dst);
        return row("memcpy in process (MemorySegment.copy)", payload.byteSize(), ns);
    }

    private static List<Row> crossProcessIpc(ExchangeNode node, Arena arena, MemorySegment[] payloads, int[] transfers,
            int[] warmups) throws Exception {
        int total = 0;
        for (int s = 0; s < payloads.length; s++) {
            total += transfers[s] + warmups[s];
        }
        List<Row> rows = new ArrayList<>();
        try (TensorReceiver acks = node.newReceiver(ExchangeChannels.ipc(), 3102, TensorAllocator.of(arena));
                TensorSender out = node.newSender(ExchangeChannels.ipc(), 3101);
                PeerProcess peer = PeerProcess.start(node.aeronDirectory(), "3101", "3102", "ack",
                        Integer.toString(total), Long.toString(WAIT.toMillis()),
                        Long.toString(MAX_IDLE.toNanos() / 1000))) {
            int id = 0;
            for (int s = 0; s < payloads.length; s++) {
                long[] ns = new long[transfers[s]];
                for (int i = -warmups[s]; i < transfers[s]; i++, id++) {
                    CompletableFuture<Long> acked = acks.expect(id, 2, WAIT).thenApply(x -> System.nanoTime());
                    long t0 = System.nanoTime();
                    out.send(id, 1, payloads[s]);
                    long t1 = acked.get(WAIT.toSeconds(), TimeUnit.SECONDS);
                    if (i >= 0) {
                        ns[i] = t1 - t0;
                    }
                }
                rows.add(row("IPC, other process (+ empty reply)", payloads[s].byteSize(), ns));
            }
            out.send(-1, 0, MemorySegment.ofArray(new byte[0])).get(WAIT.toSeconds(), TimeUnit.SECONDS);
            if (peer.awaitExit(60) != 0) {
                throw new IllegalStateException("peer process failed:\n" + peer.output());
            }
        }
        return rows;
    }

    private static List<Row> between(ExchangeNode from, ExchangeNode to, String channel, int stream, String name,
            Arena arena, MemorySegment[] payloads, int[] transfers, int[] warmups) throws Exception {
        List<Row> rows = new ArrayList<>();
        try (TensorReceiver in = to.newReceiver(channel, stream, TensorAllocator.of(arena));
                TensorSender out = from.newSender(channel, stream)) {
            int id = 0;
            for (int s = 0; s < payloads.length; s++) {
                MemorySegment dst = arena.allocate(payloads[s].byteSize(), 64);
                dst.fill((byte) 0);    // reused destination, touched once: page faults are not the exchange's cost
                TensorAllocator reuse = (t, v, n) -> dst;
                long[] ns = new long[transfers[s]];
                for (int i = -warmups[s]; i < transfers[s]; i++, id++) {
                    CompletableFuture<Long> done = in.expect(id, 1, reuse, WAIT).thenApply(x -> System.nanoTime());
                    long t0 = System.nanoTime();
                    out.send(id, 1, payloads[s]);
                    long t1 = done.get(WAIT.toSeconds(), TimeUnit.SECONDS);
                    if (i >= 0) {
                        ns[i] = t1 - t0;
                    }
                }
                check(name, payloads[s], dst);
                rows.add(row(name, payloads[s].byteSize(), ns));
            }
        }
        return rows;
    }

    private static Row row(String transport, long size, long[] ns) {
        long[] sorted = ns.clone();
        Arrays.sort(sorted);
        return new Row(transport, size, ns.length, percentile(sorted, 0.50) / 1e3, percentile(sorted, 0.99) / 1e3);
    }

    private static double percentile(long[] sorted, double p) {
        int index = (int) Math.ceil(p * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, index))];
    }

    private static void check(String what, MemorySegment expected, MemorySegment actual) {
        long at = expected.mismatch(actual.asSlice(0, expected.byteSize()));
        if (at != -1) {
            throw new IllegalStateException(what + ": received bytes differ at " + at);
        }
    }

    private static MemorySegment random(Arena arena, long size, long seed) {
        MemorySegment s = arena.allocate(size, 64);
        SplittableRandom random = new SplittableRandom(seed);
        for (long i = 0; i < size / Long.BYTES; i++) {
            s.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i, random.nextLong());
        }
        return s;
    }

    private static int freeUdpPort() throws Exception {
        try (DatagramSocket socket = new DatagramSocket(0, InetAddress.getByName("127.0.0.1"))) {
            return socket.getLocalPort();
        }
    }

    private static void print(List<Row> rows, boolean quick) {
        System.out.printf("%n## Exchange transfers (%d cores, load average %.2f when printed, idle park <= %d µs%s)%n%n",
                Runtime.getRuntime().availableProcessors(),
                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(), MAX_IDLE.toNanos() / 1000,
                quick ? ", --quick: few transfers, indicative only" : "");
        System.out.println("| transport | size | transfers | p50 | p99 | GiB/s (size/p50) | memcpy / transport |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|");
        for (Row r : rows) {
            double memcpy = rows.stream().filter(m -> m.transport().startsWith("memcpy") && m.size() == r.size())
                    .findFirst().orElseThrow().gibPerS();
            System.out.printf("| %s | %d MiB | %d | %s | %s | %.2f | %.1f× |%n", r.transport(), r.size() / MIB,
                    r.transfers(), time(r.p50Us()), time(r.p99Us()), r.gibPerS(), memcpy / r.gibPerS());
        }
        System.out.println();
    }

    private static String time(double us) {
        return us >= 10_000 ? "%.1f ms".formatted(us / 1e3) : "%.0f µs".formatted(us);
    }
}
