package aether.device.cpu.kernel;

import aether.device.cpu.KernelPool;
import aether.device.cpu.bench.BandwidthProbe;
import aether.device.cpu.bench.MatmulBenchmark;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Why long rows (the FFN down projection, [2048 x 8192]) stream slower from memory than the 2048-column matrices: one
 * core, one token, the 512-bit planar Q4_0 kernel called directly on the same weights, round-robin with a pass over a
 * buffer larger than the L3 before every call (so the weights always come from DRAM), against variants. Prints each
 * one's best and median pass (GB/s of planar weights) and its largest difference from the old kernel's output. Found: the
 * activation row's L1 footprint (16 KiB of shorts at 8192 columns, re-read for every weight row) — wrapping the index
 * to 4 or 8 KiB (wrong results) ran 1.5× faster; the kernel now reads the one-token row as bytes (8 KiB, same bits).
 * {@code scripts/jmh device-workers --main aether.device.cpu.kernel.DownProjRace ROWS COLS SECONDS}.
 */
public final class DownProjRace {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Short> S512 = ShortVector.SPECIES_512;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final int WIDE = Q8Activations.Q4_WIDE_LANES;

    private DownProjRace() {}

    /**
     * The one-token body before (activations as shorts, 16 KiB a row at 8192 columns); with a {@code mask} below -1,
     * a diagnostic with wrong results: the activation index wrapped to the first {@code mask + 1} shorts.
     */
    static float dotSmallActs(MemorySegment p, long rowOff, int pb, short[] wx, int mask, float[] dx, float[] cx, float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, b), c0);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = (4 * WIDE * qd) & mask;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var s = FloatVector.fromArray(F512, ss, b);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 32)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_EVEN), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 64))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, wx, a + 96)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_ODD), o0);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.intoArray(ss, l + 16);
        return Q4_0BatchKernels.sum24(ss, l);
    }

    public static void main(String[] args) {
        int rows = Integer.parseInt(args[0]);
        int cols = Integer.parseInt(args[1]);
        double seconds = Double.parseDouble(args[2]);
        String[] names = {"shorts (before)", "bytes (rowsPlanarWide)", "shorts wrapped to 4 KiB", "shorts wrapped to 8 KiB",
            "rowsPlanarWide, shorts"};
        try (Arena arena = Arena.ofShared(); KernelPool one = new KernelPool(1, 0);
             BandwidthProbe flush = new BandwidthProbe(96L << 20)) {
            MemorySegment w = arena.allocate(GgmlType.Q4_0.bytesFor(cols) * rows, 64);
            MatmulBenchmark.fillWeights(GgmlType.Q4_0, w, 42);
            PackedWeights pw = PackedWeights.prepare(GgmlType.Q4_0, w, rows, cols, arena);
            MemorySegment x = arena.allocate(4L * cols, 64);
            for (int i = 0; i < cols; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) Math.sin(i));
            }
            int pb = pw.paddedBlocks();
            short[] ax = new short[pb * Q8Activations.Q4_LANES];
            short[] wx = new short[pb * WIDE];
            float[] dx = new float[pb];
            float[] cx = new float[pb];
            float[] ss = new float[8 * pb + 16 + 96];
            Q8Activations.quantizeRowQ4(x, 0, cols, pb, ax, 0, dx, 0);
            Q8Activations.blockCorrections(ax, 0, pb, cx, 0);
            Q8Activations.planarWide(ax, 0, pb, wx, 0);
            MemorySegment bx = arena.allocate(wx.length, 64);
            Q4_0BatchKernels.activationBytes(ax, 0, pb, bx, 0);
            long rowBytes = PackedWeights.q4PlanarRowBytes(pb);
            MemorySegment p = pw.packed();
            MemorySegment[] y = new MemorySegment[names.length];
            for (int k = 0; k < y.length; k++) {
                y[k] = arena.allocate(4L * rows, 64);
            }
            int mask = Math.min(pb, 64) * WIDE - 1;
            int mask8 = Math.min(pb, 128) * WIDE - 1;
            long[][] t = new long[names.length][100000];
            int n = 0;
            long sink = 0;
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warm = System.nanoTime() + (long) (seconds * 0.2e9);
            while (System.nanoTime() < end && n < t[0].length) {
                for (int k = 0; k < names.length; k++) {
                    sink += flush.pass(one);
                    long t0 = System.nanoTime();
                    switch (k) {
                        case 0 -> {
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, dotSmallActs(p, r * rowBytes, pb, wx, -1, dx, cx, ss));
                            }
                        }
                        case 1 -> Q4_0BatchKernels.rowsPlanarWide(p, pb, 0, rows, wx, 0, bx, dx, cx, 0, 1, y[k], 0, ss);   // bytes at any length here
                        case 4 -> Q4_0BatchKernels.rowsPlanarWide(p, pb, 0, rows, wx, 0, null, dx, cx, 0, 1, y[k], 0, ss);
                        default -> {
                            int m = k == 2 ? mask : mask8;
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, dotSmallActs(p, r * rowBytes, pb, wx, m, dx, cx, ss));
                            }
                        }
                    }
                    t[k][n] = System.nanoTime() - t0;
                }
                if (System.nanoTime() > warm) {
                    n++;
                }
            }
            System.out.printf(Locale.ROOT, "[%d x %d] planar Q4_0, one core, weights from DRAM, %d passes (sink %d)%n",
                    rows, cols, n, sink & 1);
            double base = 0;
            double baseMedian = 0;
            for (int k = 0; k < names.length; k++) {
                long[] v = Arrays.copyOf(t[k], n);
                Arrays.sort(v);
                double best = (double) pw.packedBytes() / v[0];
                double median = (double) pw.packedBytes() / v[n / 2];
                if (k == 0) {
                    base = best;
                    baseMedian = median;
                }
                double diff = 0;
                for (long i = 0; i < rows; i++) {
                    diff = Math.max(diff, Math.abs(y[k].getAtIndex(ValueLayout.JAVA_FLOAT, i) - y[0].getAtIndex(ValueLayout.JAVA_FLOAT, i)));
                }
                System.out.printf(Locale.ROOT, "  %-24s best %5.1f GB/s (%.3f×), median %5.1f GB/s (%.3f×), max |y - before| %.3g%n",
                        names[k], best, best / base, median, median / baseMedian, diff);
            }
        }
    }
}
