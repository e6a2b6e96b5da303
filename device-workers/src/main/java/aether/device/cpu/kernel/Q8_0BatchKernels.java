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

    /** Rows of more blocks than this (4096 columns) read a lone token's quants as {@link #pairs}. */
    static final int PAIRS_MIN_BLOCKS = 128;

    private Q8_0BatchKernels() {}

    /**
     * The quants of the {@link Q8Activations} row at {@code xq[x0]} ({@code cols} elements) paired for {@link #dot1Pairs}:
     * per block 32 bytes, 16 little-endian 16-bit lanes, lane k = quant k in its low byte and quant k + 16 in its high
     * byte, written to {@code pairs[0..)}.
     */
    static void pairs(MemorySegment xq, long x0, int cols, MemorySegment pairs) {
        long q16 = x0 + Q8Activations.quants16Offset(cols);
        for (int b = 0, blocks = cols / 32; b < blocks; b++) {
            ShortVector.fromMemorySegment(S256, xq, q16 + b * 64L, LE).and((short) 0xFF)
                    .or(ShortVector.fromMemorySegment(S256, xq, q16 + b * 64L + 32, LE).lanewise(VectorOperators.LSHL, 8))
                    .intoMemorySegment(pairs, b * 32L, LE);
        }
    }

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
        rows(w, rowBytes, from, to, xq, xqStride, null, tokens, cols, y, yStride, ss);
    }

    /**
     * {@link #rows(MemorySegment, long, int, int, MemorySegment, long, int, int, MemorySegment, long, float[])}; with an
     * odd token count and {@code lastPairs} non-null, the last token's one-token body reads its quants from
     * {@code lastPairs} ({@link #pairs}: 32 bytes a block instead of the 64 of the int16 copy) and splits them by shifts:
     * the same values, the same bits, half the L1 footprint. Matmul passes them for rows longer than
     * {@value #PAIRS_MIN_BLOCKS} blocks, where the int16 row (16 KiB at 8192 columns, re-read for every weight row)
     * slowed the FFN down projection's weight stream (BENCHMARKS.md, cpudec).
     */
    static void rows(MemorySegment w, long rowBytes, int from, int to, MemorySegment xq, long xqStride,
                     MemorySegment lastPairs, int tokens, int cols, MemorySegment y, long yStride, float[] ss) {
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
                y.set(BlockLayouts.F32, t * yStride + 4L * r, lastPairs != null
                        ? dot1Pairs(w, wOff, xq, t * xqStride, lastPairs, cols, ss) : dot1(w, wOff, xq, t * xqStride, cols, ss));
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

    /** {@link #dot1} reading the quants from {@link #pairs} (the scales still from the row at {@code xq[x0]}). */
    private static float dot1Pairs(MemorySegment w, long wOff, MemorySegment xq, long x0, MemorySegment pairs, int cols,
                                   float[] ss) {
        int blocks = cols / 32;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long q = wOff + (long) b * Q8_0_BYTES + Q8_0_QS;
            var pv = ShortVector.fromMemorySegment(S256, pairs, b * 32L, LE);
            var w0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q, LE).convertShape(VectorOperators.B2S, S256, 0);
            var w1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q + 16, LE).convertShape(VectorOperators.B2S, S256, 0);
            float dw = Float.float16ToFloat(w.get(BlockLayouts.I16, q - Q8_0_QS));
            var v = w0.mul(pv.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8))
                    .add(w1.mul(pv.lanewise(VectorOperators.ASHR, 8))).reinterpretAsInts();
            var i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
            c0 = ((FloatVector) i.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dw * xq.get(BlockLayouts.F32, x0 + 4L * b)), c0);
        }
        c0.intoArray(ss, 0);
        return sum8(ss, 0);
    }
}
