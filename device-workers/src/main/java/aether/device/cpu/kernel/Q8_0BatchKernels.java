package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q8_0_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q8_0_QS;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Multi-row (small batch) int8 kernels for Q8_0 weights against {@link Q8Activations} rows: the decode of several
 * sequences in one step. Each weight block is loaded and widened to 16-bit lanes once, with its f16 scale converted
 * once, then multiplied with the Q8 activations of 4 (or 2) tokens in the same pass. The one-row kernel
 * ({@link Q8_0Kernels#dotQ8}) reads at ~0.95 of the memory bandwidth, so a decode step of R sequences that called it
 * per token read every weight R times; here the weights are read once per group of 4 tokens.
 *
 * <p>Per token the arithmetic is {@link Q8_0Kernels#dotQ8}'s (same integer products and folds, the same float
 * operations in the same order) except the last step: the 8 lanes of the accumulator are summed in a fixed order
 * rather than with {@code reduceLanes}, whose order differs between the interpreter and C2. Matmul runs one token
 * through this class too, so a sequence's result is bit-identical whether it is decoded alone or in a batch, in every
 * JIT tier. As in {@link Q4_0Kernels}, no vector is passed to or returned from a helper (C2 would box it past its
 * inlining cutoff), so the 4-, 2- and 1-token bodies are written out.
 */
final class Q8_0BatchKernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Q8_0BatchKernels() {}

    /** Floats of per-thread scratch {@link #rows} needs: 4 × 8 lanes to sum. */
    static final int SCRATCH_FLOATS = 32;

    /** The 8 lanes at {@code v[off]} summed in a fixed order (see the class comment). */
    private static float sum8(float[] v, int off) {
        return ((v[off] + v[off + 1]) + (v[off + 2] + v[off + 3])) + ((v[off + 4] + v[off + 5]) + (v[off + 6] + v[off + 7]));
    }

    /**
     * {@code y[t][r] = dot(W[r], x[t])} for weight rows [from, to) and tokens [0, tokens): tokens in groups of 4, then 2,
     * then 1. Token t's {@link Q8Activations} row is at {@code xq[t·xqStride]}; {@code ss} holds {@link #SCRATCH_FLOATS}.
     */
    static void rows(MemorySegment w, long rowBytes, int from, int to, MemorySegment xq, long xqStride, int tokens,
                     int cols, MemorySegment y, long yStride, float[] ss) {
        for (int r = from; r < to; r++) {
            long wOff = r * rowBytes;
            int t = 0;
            for (; t + 4 <= tokens; t += 4) {
                rows4(w, wOff, xq, t * xqStride, xqStride, cols, ss, y, t * yStride + 4L * r, yStride);
            }
            if (t + 2 <= tokens) {
                rows2(w, wOff, xq, t * xqStride, xqStride, cols, ss, y, t * yStride + 4L * r, yStride);
                t += 2;
            }
            if (t < tokens) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dot1(w, wOff, xq, t * xqStride, cols, ss));
            }
        }
    }

    private static void rows4(MemorySegment w, long wOff, MemorySegment xq, long x0, long xs, int cols, float[] ss,
                              MemorySegment y, long y0, long ys) {
        int blocks = cols / 32;
        long q16 = Q8Activations.quants16Offset(cols);
        long x1 = x0 + xs;
        long x2 = x1 + xs;
        long x3 = x2 + xs;
        var c0 = FloatVector.zero(F);
        var c1 = FloatVector.zero(F);
        var c2 = FloatVector.zero(F);
        var c3 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long q = wOff + (long) b * Q8_0_BYTES + Q8_0_QS;
            long a = q16 + b * 64L;
            var w0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q, LE).convertShape(VectorOperators.B2S, S256, 0);
            var w1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q + 16, LE).convertShape(VectorOperators.B2S, S256, 0);
            float dw = Float.float16ToFloat(w.get(BlockLayouts.I16, q - Q8_0_QS));
            // token 0
            var v = w0.mul(ShortVector.fromMemorySegment(S256, xq, x0 + a, LE))
                    .add(w1.mul(ShortVector.fromMemorySegment(S256, xq, x0 + a + 32, LE))).reinterpretAsInts();
            var i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
            c0 = ((FloatVector) i.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dw * xq.get(BlockLayouts.F32, x0 + 4L * b)), c0);
            // token 1
            v = w0.mul(ShortVector.fromMemorySegment(S256, xq, x1 + a, LE))
                    .add(w1.mul(ShortVector.fromMemorySegment(S256, xq, x1 + a + 32, LE))).reinterpretAsInts();
            i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
            c1 = ((FloatVector) i.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dw * xq.get(BlockLayouts.F32, x1 + 4L * b)), c1);
            // token 2
            v = w0.mul(ShortVector.fromMemorySegment(S256, xq, x2 + a, LE))
                    .add(w1.mul(ShortVector.fromMemorySegment(S256, xq, x2 + a + 32, LE))).reinterpretAsInts();
            i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
            c2 = ((FloatVector) i.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dw * xq.get(BlockLayouts.F32, x2 + 4L * b)), c2);
            // token 3
            v = w0.mul(ShortVector.fromMemorySegment(S256, xq, x3 + a, LE))
                    .add(w1.mul(ShortVector.fromMemorySegment(S256, xq, x3 + a + 32, LE))).reinterpretAsInts();
            i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
            c3 = ((FloatVector) i.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dw * xq.get(BlockLayouts.F32, x3 + 4L * b)), c3);
        }
        c0.intoArray(ss, 0);
        c1.intoArray(ss, 8);
        c2.intoArray(ss, 16);
        c3.intoArray(ss, 24);
        y.set(BlockLayouts.F32, y0, sum8(ss, 0));
        y.set(BlockLayouts.F32, y0 + ys, sum8(ss, 8));
        y.set(BlockLayouts.F32, y0 + 2 * ys, sum8(ss, 16));
        y.set(BlockLayouts.F32, y0 + 3 * ys, sum8(ss, 24));
    }

    private static void rows2(MemorySegment w, long wOff, MemorySegment xq, long x0, long xs, int cols, float[] ss,
                              MemorySegment y, long y0, long ys) {
        int blocks = cols / 32;
        long q16 = Q8Activations.quants16Offset(cols);
        long x1 = x0 + xs;
        var c0 = FloatVector.zero(F);
        var c1 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long q = wOff + (long) b * Q8_0_BYTES + Q8_0_QS;
            long a = q16 + b * 64L;
            var w0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q, LE).convertShape(VectorOperators.B2S, S256, 0);
            var w1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q + 16, LE).convertShape(VectorOperators.B2S, S256, 0);
            float dw = Float.float16ToFloat(w.get(BlockLayouts.I16, q - Q8_0_QS));
            var v = w0.mul(ShortVector.fromMemorySegment(S256, xq, x0 + a, LE))
                    .add(w1.mul(ShortVector.fromMemorySegment(S256, xq, x0 + a + 32, LE))).reinterpretAsInts();
            var i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
            c0 = ((FloatVector) i.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dw * xq.get(BlockLayouts.F32, x0 + 4L * b)), c0);
            v = w0.mul(ShortVector.fromMemorySegment(S256, xq, x1 + a, LE))
                    .add(w1.mul(ShortVector.fromMemorySegment(S256, xq, x1 + a + 32, LE))).reinterpretAsInts();
            i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
            c1 = ((FloatVector) i.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dw * xq.get(BlockLayouts.F32, x1 + 4L * b)), c1);
        }
        c0.intoArray(ss, 0);
        c1.intoArray(ss, 8);
        y.set(BlockLayouts.F32, y0, sum8(ss, 0));
        y.set(BlockLayouts.F32, y0 + ys, sum8(ss, 8));
    }

    /** One weight row against one token: {@link Q8_0Kernels#dotQ8} with the fixed-order lane sum. */
    private static float dot1(MemorySegment w, long wOff, MemorySegment xq, long x0, int cols, float[] ss) {
        int blocks = cols / 32;
        long q16 = Q8Activations.quants16Offset(cols);
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long q = wOff + (long) b * Q8_0_BYTES + Q8_0_QS;
            long a = q16 + b * 64L;
            var w0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q, LE).convertShape(VectorOperators.B2S, S256, 0);
            var w1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q + 16, LE).convertShape(VectorOperators.B2S, S256, 0);
            float dw = Float.float16ToFloat(w.get(BlockLayouts.I16, q - Q8_0_QS));
            var v = w0.mul(ShortVector.fromMemorySegment(S256, xq, x0 + a, LE))
                    .add(w1.mul(ShortVector.fromMemorySegment(S256, xq, x0 + a + 32, LE))).reinterpretAsInts();
            var i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
            c0 = ((FloatVector) i.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dw * xq.get(BlockLayouts.F32, x0 + 4L * b)), c0);
        }
        c0.intoArray(ss, 0);
        return sum8(ss, 0);
    }
}
