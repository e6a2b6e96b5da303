package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q4_K_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q4_K_QS;
import static aether.device.cpu.kernel.BlockLayouts.Q4_K_SCALES;

import aether.device.cpu.bench.MatmulBenchmark;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * One-core race of the Q4_K int8 decode kernels ({@link KQuantQ8Kernels}) on the same [rows x cols] matrix and Q8_K
 * activation row, called round-robin so that machine load hits both alike: the 256-bit kernel and the 512-bit one,
 * for Q4_K or Q6_K (4th argument), and for Q4_K the 256-bit kernel as it was before its mins were vectorized. Prints each one's best and median pass in GB/s of weights read, and the largest
 * difference between their outputs (same integer sums, so only float summation order differs). {@code
 * scripts/jmh device-workers --main aether.device.cpu.kernel.KQuantRace [rows] [cols] [seconds] [Q4_K|Q6_K]}.
 */
public final class KQuantRace {
    private KQuantRace() {}

    /** The 256-bit Q4_K kernel before its mins were vectorized (eight scalar products per super-block). */
    static float dotQ4_KScalarMins(MemorySegment w, long wOff, short[] eo, int aOff, float[] dk, int dOff, int[] bs, int bsOff,
                           int blocks) {
        var acc = FloatVector.zero(KQuantQ8Kernels.F);
        float mins = 0f;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_K_BYTES;
            float dx = dk[dOff + b];
            float dd = Float.float16ToFloat(w.get(BlockLayouts.I16, blk)) * dx;
            float dm = Float.float16ToFloat(w.get(BlockLayouts.I16, blk + 2)) * dx;
            int a0 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES);
            int a1 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES + 4);
            int a2 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES + 8);
            int sl = a0 & 0x3f3f3f3f;
            int sh = (a2 & 0x0f0f0f0f) | (((a0 >>> 6) & 0x03030303) << 4);
            int ml = a1 & 0x3f3f3f3f;
            int mh = ((a2 >>> 4) & 0x0f0f0f0f) | (((a1 >>> 6) & 0x03030303) << 4);
            int s8 = bsOff + 8 * b;
            int msum = (ml & 0xFF) * bs[s8] + ((ml >>> 8) & 0xFF) * bs[s8 + 1] + ((ml >>> 16) & 0xFF) * bs[s8 + 2]
                    + (ml >>> 24) * bs[s8 + 3] + (mh & 0xFF) * bs[s8 + 4] + ((mh >>> 8) & 0xFF) * bs[s8 + 5]
                    + ((mh >>> 16) & 0xFF) * bs[s8 + 6] + (mh >>> 24) * bs[s8 + 7];
            mins += dm * msum;
            int ab = aOff + 256 * b;
            var isum = IntVector.zero(KQuantQ8Kernels.I);
            for (int g = 0; g < 4; g++) {
                int a = ab + 64 * g;      // sub-block 2g: even elements, odd elements; then sub-block 2g+1 likewise
                int sc = g < 2 ? sl >>> (16 * g) : sh >>> (16 * (g - 2));
                var q = ShortVector.fromMemorySegment(KQuantQ8Kernels.S256, w, blk + Q4_K_QS + 32L * g, KQuantQ8Kernels.LE);
                var lo = q.and((short) 0xF).mul(ShortVector.fromArray(KQuantQ8Kernels.S256, eo, a))
                        .add(q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(KQuantQ8Kernels.S256, eo, a + 16)))
                        .reinterpretAsInts();
                var hi = q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(KQuantQ8Kernels.S256, eo, a + 32))
                        .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(KQuantQ8Kernels.S256, eo, a + 48)))
                        .reinterpretAsInts();
                isum = isum.add(lo.add(lo.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul(sc & 0xFF));
                isum = isum.add(hi.add(hi.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul((sc >>> 8) & 0xFF));
            }
            acc = ((FloatVector) isum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(KQuantQ8Kernels.F, dd), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD) - mins;
    }


    public static void main(String[] args) {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 14336;
        int cols = args.length > 1 ? Integer.parseInt(args[1]) : 4096;
        double seconds = args.length > 2 ? Double.parseDouble(args[2]) : 30;
        GgmlType type = GgmlType.valueOf(args.length > 3 ? args[3] : "Q4_K");
        String[] names = type == GgmlType.Q6_K ? new String[] {"256-bit", "512-bit"}
                : new String[] {"256-bit", "512-bit", "256-bit, scalar mins"};
        try (Arena arena = Arena.ofShared()) {
            long rowBytes = type.bytesFor(cols);
            MemorySegment w = arena.allocate(rowBytes * rows, 64);
            MatmulBenchmark.fillWeights(type, w, 42);
            MemorySegment x = arena.allocate(4L * cols, 64);
            for (int i = 0; i < cols; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) Math.sin(i));
            }
            Q8KRows q = new Q8KRows();
            q.reserve(cols, 1);
            q.quantize(0, x, 0);
            MemorySegment[] y = new MemorySegment[names.length];
            for (int k = 0; k < y.length; k++) {
                y[k] = arena.allocate(4L * rows, 64);
            }
            long[][] t = new long[names.length][100000];
            int n = 0;
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warm = System.nanoTime() + (long) (seconds * 0.2e9);
            while (System.nanoTime() < end && n < t[0].length) {
                for (int k = 0; k < names.length; k++) {
                    long t0 = System.nanoTime();
                    switch (k) {
                        case 0 -> {
                            if (type == GgmlType.Q6_K) {
                                KQuantQ8Kernels.rowsQ6_K(w, rowBytes, 0, rows, q, 1, y[k], 0);
                            } else {
                                KQuantQ8Kernels.rowsQ4_K(w, rowBytes, 0, rows, q, 1, y[k], 0);
                            }
                        }
                        case 2 -> {
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, dotQ4_KScalarMins(w, r * rowBytes, q.aqEo, 0, q.dk, 0, q.bs, 0, q.blocks));
                            }
                        }
                        default -> {
                            if (type == GgmlType.Q6_K) {
                                KQuantQ8Kernels.rowsQ6_KWide(w, rowBytes, 0, rows, q, 1, y[k], 0);
                            } else {
                                KQuantQ8Kernels.rowsQ4_KWide(w, rowBytes, 0, rows, q, 1, y[k], 0);
                            }
                        }
                    }
                    t[k][n] = System.nanoTime() - t0;
                }
                if (System.nanoTime() > warm) {
                    n++;
                }
            }
            for (int k = 0; k < names.length; k++) {
                long[] v = Arrays.copyOf(t[k], n);
                Arrays.sort(v);
                double diff = 0;
                for (long i = 0; i < rows; i++) {
                    diff = Math.max(diff, Math.abs(y[k].getAtIndex(ValueLayout.JAVA_FLOAT, i) - y[0].getAtIndex(ValueLayout.JAVA_FLOAT, i)));
                }
                System.out.printf(Locale.ROOT, "%-20s best %.1f GB/s, median %.1f GB/s (%d passes), max |y - y256| %.3g%n",
                        names[k], (double) w.byteSize() / v[0], (double) w.byteSize() / v[n / 2], n, diff);
            }
        }
    }
}
