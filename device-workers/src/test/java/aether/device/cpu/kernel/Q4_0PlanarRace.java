package aether.device.cpu.kernel;

import aether.device.cpu.bench.MatmulBenchmark;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * One-core race of the planar Q4_0 decode dot against its previous form (per-block correction lanes, four-op fold
 * with a bias), called alternately on the same rows so that machine load hits both alike; prints each one's best and
 * median pass over a [rows x cols] matrix in GB/s. {@code scripts/jmh device-workers --main
 * aether.device.cpu.kernel.Q4_0PlanarRace [rows] [cols] [seconds]}.
 */
public final class Q4_0PlanarRace {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Q4_0PlanarRace() {}

    static float dotPlanarCorrectionLanes(MemorySegment p, long rowOff, int paddedBlocks, short[] ax, int axOff, float[] dx, int dxOff,
                           float[] ss) {
        long qOff = rowOff + 2L * paddedBlocks;
        for (int b = 0; b < paddedBlocks; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, dxOff + b)).intoArray(ss, b);
        }
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        for (int pr = 0, pairs = paddedBlocks / 2; pr < pairs; pr++) {
            int b = 2 * pr;
            int a = axOff + 2 * Q8Activations.Q4_LANES * pr;
            var q = ShortVector.fromMemorySegment(S256, p, qOff + 16L * b, LE);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a + 16)))
                    .add(ShortVector.fromArray(S256, ax, a + 32)).reinterpretAsInts();
            var i = v.and(0xFFFF).add(v.lanewise(VectorOperators.ASHR, 16));
            acc0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b]), acc0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a + 48))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S256, ax, a + 64)))
                    .add(ShortVector.fromArray(S256, ax, a + 80)).reinterpretAsInts();
            var i1 = v1.and(0xFFFF).add(v1.lanewise(VectorOperators.ASHR, 16));
            acc1 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b + 1]), acc1);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }


    public static void main(String[] args) {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 14336;
        int cols = args.length > 1 ? Integer.parseInt(args[1]) : 4096;
        double seconds = args.length > 2 ? Double.parseDouble(args[2]) : 30;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment w = arena.allocate(GgmlType.Q4_0.bytesFor(cols) * rows, 64);
            MatmulBenchmark.fillWeights(GgmlType.Q4_0, w, 42);
            PackedWeights pw = PackedWeights.prepare(GgmlType.Q4_0, w, rows, cols, arena);
            MemorySegment x = arena.allocate(4L * cols, 64);
            for (int i = 0; i < cols; i++) {
                x.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, (float) Math.sin(i));
            }
            int pb = pw.paddedBlocks();
            short[] ax = new short[pb * Q8Activations.Q4_LANES];
            float[] dx = new float[pb];
            float[] cx = new float[pb];
            float[] ss = new float[pb];
            Q8Activations.quantizeRowQ4(x, 0, cols, pb, ax, 0, dx, 0);
            Q8Activations.blockCorrections(ax, 0, pb, cx, 0);
            long rowBytes = PackedWeights.q4PlanarRowBytes(pb);
            MemorySegment p = pw.packed();
            long[][] t = new long[2][100000];
            int n = 0;
            double check = 0;
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warm = System.nanoTime() + (long) (seconds * 0.2e9);
            while (System.nanoTime() < end && n < t[0].length) {
                for (int k = 0; k < 2; k++) {
                    long t0 = System.nanoTime();
                    float s = 0;
                    for (int r = 0; r < rows; r++) {
                        s += k == 0 ? Q4_0Kernels.dotPlanar(p, r * rowBytes, pb, ax, 0, dx, 0, cx, ss)
                                : dotPlanarCorrectionLanes(p, r * rowBytes, pb, ax, 0, dx, 0, ss);
                    }
                    t[k][n] = System.nanoTime() - t0;
                    check += k == 0 ? s : -s;
                }
                if (System.nanoTime() > warm) {
                    n++;
                }
            }
            for (int k = 0; k < 2; k++) {
                long[] v = java.util.Arrays.copyOf(t[k], n);
                java.util.Arrays.sort(v);
                System.out.printf(Locale.ROOT, "%-28s best %.1f GB/s, median %.1f GB/s (%d passes)%n",
                        k == 0 ? "folded correction (new)" : "correction lanes (old)",
                        (double) pw.packedBytes() / v[0], (double) pw.packedBytes() / v[n / 2], n);
            }
            System.out.printf(Locale.ROOT, "difference of the two results summed over passes: %.3g%n", check);
        }
    }
}
