package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q8_0_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q8_0_QS;

import aether.device.cpu.bench.MatmulBenchmark;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Locale;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * One-core race of Q8_0 decode kernels against Q8 activations, called directly and round-robin on one [rows x cols]
 * matrix: the 256-bit multi-row kernel ({@link Q8_0BatchKernels#rows}, what decode runs) against a 512-bit form kept
 * here (not in the product: it did not win), for 1 token and for 4 tokens. Prints best and median pass (GB/s of
 * weights, per token group) and the largest difference from the 256-bit output. {@code scripts/jmh device-workers
 * --main aether.device.cpu.kernel.Q8_0WideRace [rows] [cols] [seconds]}.
 */
public final class Q8_0WideRace {
    static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    static final VectorSpecies<Short> S512 = ShortVector.SPECIES_512;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Q8_0WideRace() {}

    /**
     * 512-bit: the block's 32 int8 widened once to 32 shorts (vpmovsxbw zmm), one vpmullw zmm per token against its 32
     * int16 activations, the 16 pair sums folded to ints, converted and FMA'd with d_w·d_x: 6 zmm µops per block and
     * token against 8 ymm µops at 256 bits (but each zmm op occupies a Zen 4 pipe twice as long).
     */
    static void rowsWide(MemorySegment w, long rowBytes, int from, int to, MemorySegment xq, long xqStride, int tokens,
                         int cols, MemorySegment y, long yStride, float[] ss) {
        int blocks = cols / 32;
        long q16 = Q8Activations.quants16Offset(cols);
        for (int r = from; r < to; r++) {
            long wOff = r * rowBytes;
            if (tokens == 4) {
                long x0 = 0;
                long x1 = xqStride;
                long x2 = 2 * xqStride;
                long x3 = 3 * xqStride;
                var c0 = FloatVector.zero(F512);
                var c1 = FloatVector.zero(F512);
                var c2 = FloatVector.zero(F512);
                var c3 = FloatVector.zero(F512);
                for (int b = 0; b < blocks; b++) {
                    long q = wOff + (long) b * Q8_0_BYTES + Q8_0_QS;
                    long a = q16 + b * 64L;
                    var wv = (ShortVector) ByteVector.fromMemorySegment(B256, w, q, LE).convertShape(VectorOperators.B2S, S512, 0);
                    float dw = Float.float16ToFloat(w.get(BlockLayouts.I16, q - Q8_0_QS));
                    var v = wv.mul(ShortVector.fromMemorySegment(S512, xq, x0 + a, LE)).reinterpretAsInts();
                    var i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
                    c0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, dw * xq.get(BlockLayouts.F32, x0 + 4L * b)), c0);
                    v = wv.mul(ShortVector.fromMemorySegment(S512, xq, x1 + a, LE)).reinterpretAsInts();
                    i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
                    c1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, dw * xq.get(BlockLayouts.F32, x1 + 4L * b)), c1);
                    v = wv.mul(ShortVector.fromMemorySegment(S512, xq, x2 + a, LE)).reinterpretAsInts();
                    i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
                    c2 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, dw * xq.get(BlockLayouts.F32, x2 + 4L * b)), c2);
                    v = wv.mul(ShortVector.fromMemorySegment(S512, xq, x3 + a, LE)).reinterpretAsInts();
                    i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
                    c3 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, dw * xq.get(BlockLayouts.F32, x3 + 4L * b)), c3);
                }
                y.set(BlockLayouts.F32, 4L * r, c0.reduceLanes(VectorOperators.ADD));
                y.set(BlockLayouts.F32, yStride + 4L * r, c1.reduceLanes(VectorOperators.ADD));
                y.set(BlockLayouts.F32, 2 * yStride + 4L * r, c2.reduceLanes(VectorOperators.ADD));
                y.set(BlockLayouts.F32, 3 * yStride + 4L * r, c3.reduceLanes(VectorOperators.ADD));
            } else {
                var c0 = FloatVector.zero(F512);
                for (int b = 0; b < blocks; b++) {
                    long q = wOff + (long) b * Q8_0_BYTES + Q8_0_QS;
                    long a = q16 + b * 64L;
                    var wv = (ShortVector) ByteVector.fromMemorySegment(B256, w, q, LE).convertShape(VectorOperators.B2S, S512, 0);
                    float dw = Float.float16ToFloat(w.get(BlockLayouts.I16, q - Q8_0_QS));
                    var v = wv.mul(ShortVector.fromMemorySegment(S512, xq, a, LE)).reinterpretAsInts();
                    var i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
                    c0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, dw * xq.get(BlockLayouts.F32, 4L * b)), c0);
                }
                y.set(BlockLayouts.F32, 4L * r, c0.reduceLanes(VectorOperators.ADD));
            }
        }
    }

    public static void main(String[] args) {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 8192;
        int cols = args.length > 1 ? Integer.parseInt(args[1]) : 2048;
        double seconds = args.length > 2 ? Double.parseDouble(args[2]) : 30;
        String[] names = {"256 R=1", "512 R=1", "256 R=4", "512 R=4"};
        try (Arena arena = Arena.ofShared()) {
            long rowBytes = GgmlType.Q8_0.bytesFor(cols);
            MemorySegment w = arena.allocate(rowBytes * rows, 64);
            MatmulBenchmark.fillWeights(GgmlType.Q8_0, w, 42);
            MemorySegment x = arena.allocate(4L * cols, 64);
            for (int i = 0; i < cols; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) Math.sin(i));
            }
            long q8 = Q8Activations.rowBytes(cols);
            MemorySegment xq = arena.allocate(4 * q8, 64);
            for (int t = 0; t < 4; t++) {
                Q8Activations.quantizeRow(x, 0, cols, xq, t * q8);
            }
            float[] ss = new float[Q8_0BatchKernels.SCRATCH_FLOATS];
            MemorySegment[] y = new MemorySegment[names.length];
            for (int k = 0; k < y.length; k++) {
                y[k] = arena.allocate(16L * rows, 64);
            }
            long[][] t = new long[names.length][200000];
            int n = 0;
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warm = System.nanoTime() + (long) (seconds * 0.2e9);
            while (System.nanoTime() < end && n < t[0].length) {
                for (int k = 0; k < names.length; k++) {
                    int tokens = k < 2 ? 1 : 4;
                    long t0 = System.nanoTime();
                    if (k % 2 == 0) {
                        Q8_0BatchKernels.rows(w, rowBytes, 0, rows, xq, q8, tokens, cols, y[k], 4L * rows, ss);
                    } else {
                        rowsWide(w, rowBytes, 0, rows, xq, q8, tokens, cols, y[k], 4L * rows, ss);
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
                long[] base = Arrays.copyOf(t[k - k % 2], n);
                Arrays.sort(base);
                double diff = 0;
                for (long i = 0; i < rows; i++) {
                    diff = Math.max(diff, Math.abs(y[k].getAtIndex(ValueLayout.JAVA_FLOAT, i) - y[k - k % 2].getAtIndex(ValueLayout.JAVA_FLOAT, i)));
                }
                System.out.printf(Locale.ROOT, "%-8s best %5.1f GB/s (%.3f× 256), median %5.1f GB/s (%.3f× 256) (%d passes), max |y - y256| %.3g%n",
                        names[k], (double) w.byteSize() / v[0], (double) base[0] / v[0], (double) w.byteSize() / v[n / 2],
                        (double) base[n / 2] / v[n / 2], n, diff);
            }
        }
    }
}
