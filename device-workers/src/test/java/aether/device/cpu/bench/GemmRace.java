package aether.device.cpu.bench;

import aether.device.cpu.KernelPool;
import aether.device.cpu.kernel.Matmul;
import aether.device.cpu.kernel.PackedWeights;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Prefill GEMM variants raced round-robin in one JVM (see {@link KernelRace} for why): every round multiplies
 * {@code [tokens, in] x [in, out]} once per variant; the report gives each variant's best and median call in GFLOP/s.
 *
 * <p>Usage: {@code scripts/jmh device-workers --main aether.device.cpu.bench.GemmRace SHAPE THREADS SECONDS
 * VARIANT...} with SHAPE = {@code TOKENSxINxOUT} and VARIANT = {@code TYPE:BITS[:prepared]} (BITS: the {@link Matmul}'s
 * vector width, for GEMM kernels that have a 512-bit variant; none does today, see {@code GemmTile}; {@code prepared}:
 * weights through {@link PackedWeights#prepare}, as the engine multiplies them — for Q4_0 the planar layout), e.g.
 * {@code 128x4096x4096 2 30 Q4_0:256 Q4_0:512 F16:256 F16:512}.
 */
public final class GemmRace {
    private GemmRace() {}

    private record Variant(String name, GgmlType type, Matmul matmul, MemorySegment w, PackedWeights prepared,
                           List<Long> nanos) {}

    public static void main(String[] args) {
        String[] dims = args[0].split("x");
        int tokens = Integer.parseInt(dims[0]);
        int in = Integer.parseInt(dims[1]);
        int out = Integer.parseInt(dims[2]);
        int threads = Integer.parseInt(args[1]);
        double seconds = Double.parseDouble(args[2]);
        try (Arena arena = Arena.ofShared(); KernelPool pool = new KernelPool(threads, KernelPool.DEFAULT_SPIN_NS)) {
            MemorySegment x = arena.allocate(4L * in * tokens, 64);
            MemorySegment y = arena.allocate(4L * out * tokens, 64);
            long s = 7;
            for (long i = 0; i < (long) in * tokens; i++) {
                s = s * 6364136223846793005L + 1442695040888963407L;
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, ((s >>> 40) / (float) (1 << 24)) * 2 - 1);
            }
            List<Variant> variants = new ArrayList<>();
            for (int v = 3; v < args.length; v++) {
                String[] p = args[v].split(":");
                GgmlType type = GgmlType.valueOf(p[0]);
                MemorySegment w = arena.allocate(type.bytesFor(in) * out, 64);
                MatmulBenchmark.fillWeights(type, w, 42 + v);
                List<String> flags = Arrays.asList(p).subList(2, p.length);
                PackedWeights prepared = flags.contains("prepared") ? PackedWeights.prepare(type, w, out, in, arena) : null;
                variants.add(new Variant(args[v], type, new Matmul(pool, true, Matmul.Activations.AUTO,
                        Integer.parseInt(p[1])), w, prepared, new ArrayList<>()));
            }
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warmEnd = System.nanoTime() + (long) (Math.min(5, seconds / 4) * 1e9);
            while (System.nanoTime() < end) {
                boolean warm = System.nanoTime() > warmEnd;
                for (Variant v : variants) {
                    long t0 = System.nanoTime();
                    if (v.prepared != null) {
                        v.matmul.multiply(v.prepared, x, tokens, y);
                    } else {
                        v.matmul.multiply(v.type, v.w, out, in, x, tokens, y);
                    }
                    long dt = System.nanoTime() - t0;
                    if (warm) {
                        v.nanos.add(dt);
                    }
                }
            }
            double flops = 2.0 * tokens * in * out;
            System.out.printf(Locale.ROOT, "shape %s, %d thread(s), %.0f s%n", args[0], threads, seconds);
            for (Variant v : variants) {
                long[] t = v.nanos.stream().mapToLong(Long::longValue).toArray();
                Arrays.sort(t);
                System.out.printf(Locale.ROOT, "  %-10s best %6.1f GFLOP/s  median %6.1f GFLOP/s  (%d calls)%n",
                        v.name, flops / t[0], flops / t[t.length / 2], t.length);
            }
        }
    }
}
