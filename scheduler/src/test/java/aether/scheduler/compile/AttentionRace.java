package aether.scheduler.compile;

import aether.device.cpu.KernelPool;
import aether.device.cpu.kernel.Matmul;
import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Prefill attention of one sequence over an f16 paged cache, (token, KV head) items against (token, query head) items
 * ({@link KernelSteps.PagedAttention#groupKvHeads}), called round-robin in one JVM so that a shared machine's load
 * falls on both alike; reports each variant's best and median attention time (the kernel graph's profile, kv_store
 * excluded).
 *
 * <p>Usage: {@code java -cp <scheduler test classes and classpath> aether.scheduler.compile.AttentionRace TOKENS HQ HKV D
 * THREADS SECONDS [CONTEXT]}, e.g. {@code 128 32 8 64 2 30} (a 128-token prefill of the 1B synthetic model's layer) or
 * {@code 1 32 8 64 2 30 1024} (one decode step at position 1023); the tokens take the last positions of CONTEXT
 * (default TOKENS), and the earlier cache rows hold zeros.
 */
public final class AttentionRace {
    private AttentionRace() {}

    public static void main(String[] args) {
        int tokens = Integer.parseInt(args[0]);
        int hq = Integer.parseInt(args[1]);
        int hkv = Integer.parseInt(args[2]);
        int d = Integer.parseInt(args[3]);
        int threads = Integer.parseInt(args[4]);
        double seconds = Double.parseDouble(args[5]);
        int context = args.length > 6 ? Integer.parseInt(args[6]) : tokens;   // the tokens are the last of this many
        if (context < tokens) {
            throw new IllegalArgumentException("CONTEXT %d is below TOKENS %d".formatted(context, tokens));
        }
        int first = context - tokens;
        int bs = 16;
        int blocks = (context + bs - 1) / bs;
        Graph g = new Graph();
        Tensor q = g.input("q", Shape.of(tokens, hq, d), DType.F32);
        Tensor k = g.input("k", Shape.of(tokens, hkv * d), DType.F32);
        Tensor v = g.input("v", Shape.of(tokens, hkv * d), DType.F32);
        Tensor pos = g.input("pos", Shape.of(tokens), DType.I32);
        Tensor slots = g.input("slots", Shape.of(tokens), DType.I32);
        Tensor table = g.input("table", Shape.of(tokens, blocks), DType.I32);
        Tensor kc = g.input("kc", Shape.of(blocks * bs, hkv * d), DType.F16);
        Tensor vc = g.input("vc", Shape.of(blocks * bs, hkv * d), DType.F16);
        Tensor out = q.pagedAttention(kc.kvStore(k, slots), vc.kvStore(v, slots), pos, table, hkv, 1 / Math.sqrt(d), 0, 0,
                bs);
        try (Arena arena = Arena.ofShared(); KernelPool pool = new KernelPool(threads, KernelPool.DEFAULT_SPIN_NS)) {
            long rowBytes = 2L * hkv * d;
            MemorySegment kSeg = arena.allocate(rowBytes * blocks * bs, 64);
            MemorySegment vSeg = arena.allocate(rowBytes * blocks * bs, 64);
            Program.Snapshot snap = Program.from(g, List.of(), out);
            int[] map = snap.mapping();
            try (KernelGraph kg = KernelGraph.compile(snap.program(), new Matmul(pool), pool,
                    Map.of(map[kc.id()], kSeg, map[vc.id()], vSeg))) {
                Random r = new Random(1);
                fill(kg.input(map[q.id()]), r);
                fill(kg.input(map[k.id()]), r);
                fill(kg.input(map[v.id()]), r);
                for (int t = 0; t < tokens; t++) {
                    kg.input(map[pos.id()]).setAtIndex(ValueLayout.JAVA_INT_UNALIGNED, t, first + t);
                    kg.input(map[slots.id()]).setAtIndex(ValueLayout.JAVA_INT_UNALIGNED, t, first + t);
                    for (int b = 0; b < blocks; b++) {
                        kg.input(map[table.id()]).setAtIndex(ValueLayout.JAVA_INT_UNALIGNED, (long) t * blocks + b, b);
                    }
                }
                boolean[] grouped = {false, true};
                java.util.List<java.util.List<Long>> samples = List.of(new java.util.ArrayList<>(), new java.util.ArrayList<>());
                long end = System.nanoTime() + (long) (seconds * 1e9);
                long warmEnd = System.nanoTime() + (long) (seconds / 4 * 1e9);
                while (System.nanoTime() < end) {
                    boolean warm = System.nanoTime() > warmEnd;
                    for (int i = 0; i < 2; i++) {
                        KernelSteps.PagedAttention.groupKvHeads = grouped[i];
                        kg.resetProfile();
                        kg.setProfiling(true);
                        kg.run();
                        long ns = kg.kernelNanos()[2];
                        kg.setProfiling(false);
                        if (warm) {
                            samples.get(i).add(ns);
                        }
                    }
                }
                KernelSteps.PagedAttention.groupKvHeads = true;
                System.out.printf(Locale.ROOT, "paged attention, %d tokens at positions %d..%d, %d query heads over %d KV heads"
                        + " of %d, f16 cache, %d thread(s), %.0f s%n", tokens, first, context - 1, hq, hkv, d, threads, seconds);
                String[] names = {"per query head", "per KV head (rows widened once)"};
                for (int i = 0; i < 2; i++) {
                    long[] t = samples.get(i).stream().mapToLong(Long::longValue).toArray();
                    Arrays.sort(t);
                    System.out.printf(Locale.ROOT, "  %-32s best %8.3f ms  median %8.3f ms  (%d calls)%n", names[i],
                            t[0] / 1e6, t[t.length / 2] / 1e6, t.length);
                }
            }
        }
    }

    private static void fill(MemorySegment s, Random r) {
        for (long i = 0; i < s.byteSize() / 4; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) r.nextGaussian());
        }
    }
}
