package aether.device.cpu.bench;

import aether.device.cpu.KernelPool;
import aether.device.cpu.kernel.VectorSupport;
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
 * Decode GEMV variants raced round-robin in one JVM, for a machine shared with other work: every round calls each
 * variant once, interleaved with one pass of the {@link BandwidthProbe}, so load changes hit all of them alike; the
 * report gives each variant's best and median call (GB/s of weights read) and the best probe pass, so the ratios
 * between variants, and to the bandwidth, come from the same moments. Not a JMH benchmark (JMH runs variants one
 * after another, minutes apart, which on a loaded machine measures the load).
 *
 * <p>Usage: {@code scripts/jmh device-workers --main aether.device.cpu.bench.KernelRace SHAPE THREADS SECONDS
 * VARIANT...} with SHAPE = {@code 1xINxOUT} and VARIANT = {@code TYPE:ACTIVATIONS[:prepared][:256|:512]}
 * (the last picks the kernels' vector width, default {@code VectorSupport.defaultBits()}; {@code :shorts} keeps the
 * 512-bit Q4_0 one-token body on 16-bit activations, {@code Matmul.BYTE_ACTIVATIONS_PROPERTY}), e.g.
 * {@code 1x4096x14336 1 20 Q4_K:FLOAT Q4_K:AUTO Q4_0:AUTO:prepared F16:FLOAT:256 F16:FLOAT:512}.
 *
 * <p>Small-batch mode: {@code --batch INxOUT THREADS SECONDS R,R,... [TYPE]} races one prepared matmul (TYPE Q4_0, the
 * default, or Q8_0) of R activation
 * rows for each R, with the multi-row kernels at every R ({@code new}, to find the crossover) and with the dispatch before them ({@code old}: one-row
 * kernel per token below {@link Matmul#GEMM_MIN_TOKENS}, GEMM from there), and reports each call's best and median
 * time and the median as a multiple of R = 1's. A 7th argument, vector widths ({@code 256,512}), races the multi-row
 * kernels at each width instead (best call as a multiple of the first width's at the same R: its speed-up).
 */
public final class KernelRace {
    private KernelRace() {}

    private record Variant(String name, GgmlType type, Matmul matmul, MemorySegment w, PackedWeights packed,
                           long weightBytes, List<Long> nanos) {
        void call(int in, int out, MemorySegment x, MemorySegment y) {
            if (packed != null) {
                matmul.multiply(packed, x, 1, y);
            } else {
                matmul.multiply(type, w, out, in, x, 1, y);
            }
        }
    }

    public static void main(String[] args) {
        if (args[0].equals("--batch")) {
            batch(args);
            return;
        }
        String[] dims = args[0].split("x");
        int in = Integer.parseInt(dims[1]);
        int out = Integer.parseInt(dims[2]);
        int threads = Integer.parseInt(args[1]);
        double seconds = Double.parseDouble(args[2]);
        try (Arena arena = Arena.ofShared(); KernelPool pool = new KernelPool(threads, KernelPool.DEFAULT_SPIN_NS);
             BandwidthProbe probe = new BandwidthProbe(256L << 20)) {
            MemorySegment x = arena.allocate(4L * in, 64);
            MemorySegment y = arena.allocate(4L * out, 64);
            long s = 7;
            for (int i = 0; i < in; i++) {
                s = s * 6364136223846793005L + 1442695040888963407L;
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, ((s >>> 40) / (float) (1 << 24)) * 2 - 1);
            }
            List<Variant> variants = new ArrayList<>();
            for (int v = 3; v < args.length; v++) {
                String[] p = args[v].split(":");
                GgmlType type = GgmlType.valueOf(p[0]);
                MemorySegment w = arena.allocate(type.bytesFor(in) * out, 64);
                MatmulBenchmark.fillWeights(type, w, 42 + v);
                List<String> opts = Arrays.asList(p).subList(2, p.length);
                PackedWeights packed = opts.contains("prepared") ? PackedWeights.prepare(type, w, out, in, arena) : null;
                int bits = opts.contains("256") ? 256 : opts.contains("512") ? 512 : aether.device.cpu.kernel.VectorSupport.defaultBits();
                long bytes = packed != null && packed.packedBytes() > 0 ? packed.packedBytes() : w.byteSize();
                // "shorts": the 512-bit Q4_0 one-token body on 16-bit activations at every row length (as before)
                String before = System.setProperty(Matmul.BYTE_ACTIVATIONS_PROPERTY, String.valueOf(!opts.contains("shorts")));
                Matmul m = new Matmul(pool, true, Matmul.Activations.valueOf(p[1]), bits);
                if (before == null) {
                    System.clearProperty(Matmul.BYTE_ACTIVATIONS_PROPERTY);
                } else {
                    System.setProperty(Matmul.BYTE_ACTIVATIONS_PROPERTY, before);
                }
                variants.add(new Variant(args[v], type, m, w, packed, bytes, new ArrayList<>()));
            }
            double bestProbe = 0;
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warmEnd = System.nanoTime() + (long) (Math.min(5, seconds / 4) * 1e9);
            while (System.nanoTime() < end) {
                boolean warm = System.nanoTime() > warmEnd;
                for (Variant v : variants) {
                    long t0 = System.nanoTime();
                    v.call(in, out, x, y);
                    long dt = System.nanoTime() - t0;
                    if (warm) {
                        v.nanos.add(dt);
                    }
                }
                long t0 = System.nanoTime();
                probe.pass(pool);
                if (warm) {
                    bestProbe = Math.max(bestProbe, (double) probe.bytes() / (System.nanoTime() - t0));
                }
            }
            System.out.printf(Locale.ROOT, "shape %s, %d thread(s), %.0f s; best probe pass %.1f GB/s%n", args[0], threads,
                    seconds, bestProbe);
            for (Variant v : variants) {
                long[] t = v.nanos.stream().mapToLong(Long::longValue).toArray();
                Arrays.sort(t);
                double best = (double) v.weightBytes / t[0];
                double median = (double) v.weightBytes / t[t.length / 2];
                System.out.printf(Locale.ROOT, "  %-22s best %6.1f GB/s (%.2f of probe)  median %6.1f GB/s  (%d calls, best %.0f µs)%n",
                        v.name, best, best / bestProbe, median, t.length, t[0] / 1e3);
            }
        }
    }

    private record BatchVariant(String name, int rows, Matmul matmul, List<Long> nanos) {}

    private static void batch(String[] args) {
        String[] dims = args[1].split("x");
        int in = Integer.parseInt(dims[0]);
        int out = Integer.parseInt(dims[1]);
        int threads = Integer.parseInt(args[2]);
        double seconds = Double.parseDouble(args[3]);
        int[] batches = Arrays.stream(args[4].split(",")).mapToInt(Integer::parseInt).toArray();
        int maxRows = Arrays.stream(batches).max().orElseThrow();
        try (Arena arena = Arena.ofShared(); KernelPool pool = new KernelPool(threads, KernelPool.DEFAULT_SPIN_NS)) {
            MemorySegment x = arena.allocate(4L * in * maxRows, 64);
            MemorySegment y = arena.allocate(4L * out * maxRows, 64);
            long s = 7;
            for (long i = 0; i < (long) in * maxRows; i++) {
                s = s * 6364136223846793005L + 1442695040888963407L;
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, ((s >>> 40) / (float) (1 << 24)) * 2 - 1);
            }
            GgmlType type = args.length > 5 ? GgmlType.valueOf(args[5]) : GgmlType.Q4_0;
            MemorySegment w = arena.allocate(type.bytesFor(in) * out, 64);
            MatmulBenchmark.fillWeights(type, w, 42);
            PackedWeights packed = PackedWeights.prepare(type, w, out, in, arena);
            List<BatchVariant> variants = new ArrayList<>();
            if (args.length > 6) {   // widths: the multi-row kernels at each vector width, product dispatch otherwise
                int[] widths = Arrays.stream(args[6].split(",")).mapToInt(Integer::parseInt).toArray();
                for (int r : batches) {
                    for (int bits : widths) {
                        variants.add(new BatchVariant(bits + " R=" + r, r,
                                new Matmul(pool, true, Matmul.Activations.AUTO, bits, Matmul.PLANAR_GEMM_MIN_TOKENS), new ArrayList<>()));
                    }
                }
            } else {
                Matmul oldMm = new Matmul(pool, true, Matmul.Activations.AUTO, VectorSupport.defaultBits(), 0);
                Matmul newMm = new Matmul(pool, true, Matmul.Activations.AUTO, VectorSupport.defaultBits(), Integer.MAX_VALUE);   // multi-row at every R
                for (int r : batches) {
                    variants.add(new BatchVariant("old R=" + r, r, oldMm, new ArrayList<>()));
                    variants.add(new BatchVariant("new R=" + r, r, newMm, new ArrayList<>()));
                }
            }
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warmEnd = System.nanoTime() + (long) (Math.min(5, seconds / 4) * 1e9);
            while (System.nanoTime() < end) {
                boolean warm = System.nanoTime() > warmEnd;
                for (BatchVariant v : variants) {
                    long t0 = System.nanoTime();
                    v.matmul.multiply(packed, x, v.rows, y);
                    long dt = System.nanoTime() - t0;
                    if (warm) {
                        v.nanos.add(dt);
                    }
                }
            }
            double base = 0;
            double[] firstAtR = new double[maxRows + 1];
            System.out.printf(Locale.ROOT, "%s prepared [R,%d]x[%d,%d], %d thread(s), %.0f s round-robin%n", type, in, in,
                    out, threads, seconds);
            for (BatchVariant v : variants) {
                long[] t = v.nanos.stream().mapToLong(Long::longValue).toArray();
                Arrays.sort(t);
                double median = t[t.length / 2];
                if (v.rows == 1 && base == 0) {
                    base = median;
                }
                if (firstAtR[v.rows] == 0) {
                    firstAtR[v.rows] = t[0];
                }
                System.out.printf(Locale.ROOT, "  %-10s best %8.0f µs  median %8.0f µs  %5.2f× R=1  %6.2f× R=1 per row  best %.3f× the first at this R  (%d calls)%n",
                        v.name, t[0] / 1e3, median / 1e3, median / base, median / base / v.rows, firstAtR[v.rows] / t[0], t.length);
            }
        }
    }
}
