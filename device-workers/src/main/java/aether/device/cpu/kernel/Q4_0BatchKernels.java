package aether.device.cpu.kernel;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Multi-row (small batch) int8 kernels for {@link PackedWeights.Layout#Q4_0_PLANAR} weights: the decode of several
 * sequences in one step, or a short prefill chunk. Each pair of weight blocks is loaded once and cut into its four
 * nibble planes once, then multiplied with the Q8 activations of 4 (or 2) activation rows held in the same pass;
 * the f16 block scales of a weight row are widened once per row group. Per token the arithmetic is exactly
 * {@link Q4_0Kernels#dotPlanar}'s (same integer products, same float operations in the same order), so a row's
 * result is bit-identical whether it is multiplied alone or in a batch: a sequence's greedy output does not depend
 * on which other sequences share its decode step. The 8 lanes of each result are summed in a fixed order rather than
 * with {@code reduceLanes}, whose order differs between the interpreter and C2, so that holds in every JIT tier;
 * Matmul therefore runs one token through this class too ({@link #rowsPlanar} with 1 token).
 *
 * <p>What is shared per pair of blocks: the 32-byte load and the 3 shifts and 3 masks (7 of ~23 vector µops); the
 * rest (4 vpmullw, 2 adds, 2 folds, 2 conversions, 2 FMAs) is per token. The gain over calling the one-row kernel
 * per token is thus ~1.3× in vector work; the GEMM path it replaces for 4..15 tokens also had to dequantize every
 * weight to f32 and pad the tokens to 16. Register blocking: 4 tokens hold 8 accumulators and 4 nibble planes, which
 * with the temporaries fits AVX2's 16 ymm registers; as in {@link Q4_0Kernels}, no vector is passed to or returned
 * from a helper (C2 would box it past its inlining cutoff), so the 4- and 2-token bodies are written out.
 *
 * <p>{@link #rowsPlanarWide} is the same in 512-bit lanes, which {@link Matmul} runs where
 * {@link VectorSupport#defaultBits()} is 512 (AVX-512): 1.08-1.14× the 256-bit kernels' best call at 1, 2, 4 and 8
 * tokens on one core of the Zen 4 helper machine (KernelRace --batch, BENCHMARKS.md), more on long rows (1.3× at
 * 8192 columns, {@code Q4_0WideRace}), because Zen 4 executes a 512-bit integer op as two 256-bit halves: the gain
 * is front-end work (half the instructions), not execution ports.
 */
final class Q4_0BatchKernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final int LANES = Q8Activations.Q4_LANES;
    static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    static final VectorSpecies<Short> S512 = ShortVector.SPECIES_512;
    static final int WIDE = Q8Activations.Q4_WIDE_LANES;
    /**
     * 512-bit: after the fold, int lanes 0-7 hold sums of block b of a quad and lanes 8-15 of block b+2 (plane pair
     * n0/n1), or b+1 and b+3 (n2/n3); these pick their scales out of the quad's 4 (16 loaded) with one vpermps.
     */
    static final VectorShuffle<Float> QUAD_EVEN = quadScales(0);
    static final VectorShuffle<Float> QUAD_ODD = quadScales(1);

    private static VectorShuffle<Float> quadScales(int first) {
        int[] idx = new int[16];
        for (int i = 0; i < 16; i++) {
            idx[i] = i < 8 ? first : first + 2;
        }
        return VectorShuffle.fromArray(F512, idx, 0);
    }

    /** Rows of more blocks than this (4096 columns) read a lone token's activations as bytes, see {@link #rowsPlanarWide}. */
    static final int BYTE_ACTIVATIONS_MIN_BLOCKS = 128;

    private Q4_0BatchKernels() {}

    /**
     * Floats of per-thread scratch {@link #rowsPlanar} and {@link #rowsPlanarWide} need: block scales of 4 tokens, 12
     * floats of slack (the 512-bit kernel loads 16 scales at the last quad), then 4 × 24 lanes to sum.
     */
    static int scratchFloats(int paddedBlocks) {
        return 4 * paddedBlocks + 16 + 96;
    }

    /**
     * The 8 lanes at {@code v[off]} summed in a fixed order. {@code reduceLanes(ADD)} may add in any order (the
     * interpreter's fallback and C2's intrinsic differ), which would make a token's result depend on which tier ran
     * it; this keeps a token's output the same bits in every batch and every tier.
     */
    private static float sum8(float[] v, int off) {
        return ((v[off] + v[off + 1]) + (v[off + 2] + v[off + 3])) + ((v[off + 4] + v[off + 5]) + (v[off + 6] + v[off + 7]));
    }

    /**
     * {@code y[t][r] = dotPlanar(P[r], x[t])} for weight rows [from, to) and tokens [0, tokens): tokens in groups of 4,
     * then 2, then 1. Token t's activations are at {@code ax[t·axStride]}, {@code dx[t·dxStride]}, {@code cx[t·dxStride]}
     * (Matmul's quantize pass); {@code ss} holds {@link #scratchFloats} floats.
     */
    static void rowsPlanar(MemorySegment p, int paddedBlocks, int from, int to, short[] ax, int axStride, float[] dx,
                           float[] cx, int dxStride, int tokens, MemorySegment y, long yStride, float[] ss) {
        long rowBytes = PackedWeights.q4PlanarRowBytes(paddedBlocks);
        for (int r = from; r < to; r++) {
            long rowOff = r * rowBytes;
            int t = 0;
            for (; t + 4 <= tokens; t += 4) {
                rows4(p, rowOff, paddedBlocks, ax, t * axStride, axStride, dx, cx, t * dxStride, dxStride, ss, y,
                        t * yStride + 4L * r, yStride);
            }
            if (t + 2 <= tokens) {
                rows2(p, rowOff, paddedBlocks, ax, t * axStride, axStride, dx, cx, t * dxStride, dxStride, ss, y,
                        t * yStride + 4L * r, yStride);
                t += 2;
            }
            if (t < tokens) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r,
                        dot1(p, rowOff, paddedBlocks, ax, t * axStride, dx, cx, t * dxStride, ss));
            }
        }
    }

    /** One weight row against 4 tokens starting at {@code ax[a0]}, {@code dx[d0]}; results to {@code y[y0 + k·ys]}. */
    private static void rows4(MemorySegment p, long rowOff, int pb, short[] ax, int a0, int as, float[] dx, float[] cx,
                              int d0, int ds, float[] ss, MemorySegment y, long y0, long ys) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        var c1 = FloatVector.zero(F);
        var c2 = FloatVector.zero(F);
        var c3 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var ws = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f);
            var s0 = ws.mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
            var s1 = ws.mul(FloatVector.fromArray(F, dx, d0 + ds + b));
            s1.intoArray(ss, pb + b);
            c1 = s1.fma(FloatVector.fromArray(F, cx, d0 + ds + b), c1);
            var s2 = ws.mul(FloatVector.fromArray(F, dx, d0 + 2 * ds + b));
            s2.intoArray(ss, 2 * pb + b);
            c2 = s2.fma(FloatVector.fromArray(F, cx, d0 + 2 * ds + b), c2);
            var s3 = ws.mul(FloatVector.fromArray(F, dx, d0 + 3 * ds + b));
            s3.intoArray(ss, 3 * pb + b);
            c3 = s3.fma(FloatVector.fromArray(F, cx, d0 + 3 * ds + b), c3);
        }
        var e0 = FloatVector.zero(F);
        var o0 = FloatVector.zero(F);
        var e1 = FloatVector.zero(F);
        var o1 = FloatVector.zero(F);
        var e2 = FloatVector.zero(F);
        var o2 = FloatVector.zero(F);
        var e3 = FloatVector.zero(F);
        var o3 = FloatVector.zero(F);
        for (int pr = 0, pairs = pb / 2; pr < pairs; pr++) {
            int b = 2 * pr;
            int a = a0 + 2 * LANES * pr;
            var q = ShortVector.fromMemorySegment(S256, p, qOff + 16L * b, LE);
            var n0 = q.and((short) 0xF);
            var n1 = q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF);
            var n2 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF);
            var n3 = q.lanewise(VectorOperators.LSHR, 12);
            // token 0
            var v = n0.mul(ShortVector.fromArray(S256, ax, a)).add(n1.mul(ShortVector.fromArray(S256, ax, a + 16))).reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b]), e0);
            v = n2.mul(ShortVector.fromArray(S256, ax, a + 48)).add(n3.mul(ShortVector.fromArray(S256, ax, a + 64))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b + 1]), o0);
            // token 1
            int a1 = a + as;
            v = n0.mul(ShortVector.fromArray(S256, ax, a1)).add(n1.mul(ShortVector.fromArray(S256, ax, a1 + 16))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[pb + b]), e1);
            v = n2.mul(ShortVector.fromArray(S256, ax, a1 + 48)).add(n3.mul(ShortVector.fromArray(S256, ax, a1 + 64))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[pb + b + 1]), o1);
            // token 2
            int a2 = a + 2 * as;
            v = n0.mul(ShortVector.fromArray(S256, ax, a2)).add(n1.mul(ShortVector.fromArray(S256, ax, a2 + 16))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e2 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[2 * pb + b]), e2);
            v = n2.mul(ShortVector.fromArray(S256, ax, a2 + 48)).add(n3.mul(ShortVector.fromArray(S256, ax, a2 + 64))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o2 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[2 * pb + b + 1]), o2);
            // token 3
            int a3 = a + 3 * as;
            v = n0.mul(ShortVector.fromArray(S256, ax, a3)).add(n1.mul(ShortVector.fromArray(S256, ax, a3 + 16))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e3 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[3 * pb + b]), e3);
            v = n2.mul(ShortVector.fromArray(S256, ax, a3 + 48)).add(n3.mul(ShortVector.fromArray(S256, ax, a3 + 64))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o3 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[3 * pb + b + 1]), o3);
        }
        int l = 4 * pb;
        e0.add(o0).add(c0).intoArray(ss, l);
        e1.add(o1).add(c1).intoArray(ss, l + 8);
        e2.add(o2).add(c2).intoArray(ss, l + 16);
        e3.add(o3).add(c3).intoArray(ss, l + 24);
        y.set(BlockLayouts.F32, y0, sum8(ss, l));
        y.set(BlockLayouts.F32, y0 + ys, sum8(ss, l + 8));
        y.set(BlockLayouts.F32, y0 + 2 * ys, sum8(ss, l + 16));
        y.set(BlockLayouts.F32, y0 + 3 * ys, sum8(ss, l + 24));
    }

    /** {@link #rows4} for 2 tokens. */
    private static void rows2(MemorySegment p, long rowOff, int pb, short[] ax, int a0, int as, float[] dx, float[] cx,
                              int d0, int ds, float[] ss, MemorySegment y, long y0, long ys) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        var c1 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var ws = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f);
            var s0 = ws.mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
            var s1 = ws.mul(FloatVector.fromArray(F, dx, d0 + ds + b));
            s1.intoArray(ss, pb + b);
            c1 = s1.fma(FloatVector.fromArray(F, cx, d0 + ds + b), c1);
        }
        var e0 = FloatVector.zero(F);
        var o0 = FloatVector.zero(F);
        var e1 = FloatVector.zero(F);
        var o1 = FloatVector.zero(F);
        for (int pr = 0, pairs = pb / 2; pr < pairs; pr++) {
            int b = 2 * pr;
            int a = a0 + 2 * LANES * pr;
            var q = ShortVector.fromMemorySegment(S256, p, qOff + 16L * b, LE);
            var n0 = q.and((short) 0xF);
            var n1 = q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF);
            var n2 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF);
            var n3 = q.lanewise(VectorOperators.LSHR, 12);
            var v = n0.mul(ShortVector.fromArray(S256, ax, a)).add(n1.mul(ShortVector.fromArray(S256, ax, a + 16))).reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b]), e0);
            v = n2.mul(ShortVector.fromArray(S256, ax, a + 48)).add(n3.mul(ShortVector.fromArray(S256, ax, a + 64))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b + 1]), o0);
            int a1 = a + as;
            v = n0.mul(ShortVector.fromArray(S256, ax, a1)).add(n1.mul(ShortVector.fromArray(S256, ax, a1 + 16))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[pb + b]), e1);
            v = n2.mul(ShortVector.fromArray(S256, ax, a1 + 48)).add(n3.mul(ShortVector.fromArray(S256, ax, a1 + 64))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[pb + b + 1]), o1);
        }
        int l = 4 * pb;
        e0.add(o0).add(c0).intoArray(ss, l);
        e1.add(o1).add(c1).intoArray(ss, l + 8);
        y.set(BlockLayouts.F32, y0, sum8(ss, l));
        y.set(BlockLayouts.F32, y0 + ys, sum8(ss, l + 8));
    }

    /** One weight row against one token: {@link Q4_0Kernels#dotPlanar} with the fixed-order lane sum. */
    private static float dot1(MemorySegment p, long rowOff, int pb, short[] ax, int a0, float[] dx, float[] cx, int d0,
                              float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
        }
        var e0 = FloatVector.zero(F);
        var o0 = FloatVector.zero(F);
        for (int pr = 0, pairs = pb / 2; pr < pairs; pr++) {
            int b = 2 * pr;
            int a = a0 + 2 * LANES * pr;
            var q = ShortVector.fromMemorySegment(S256, p, qOff + 16L * b, LE);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a + 16)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b]), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a + 48))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S256, ax, a + 64)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b + 1]), o0);
        }
        int l = 4 * pb;
        e0.add(o0).add(c0).intoArray(ss, l);
        return sum8(ss, l);
    }

    /** The 16 lanes of a 512-bit accumulator at {@code v[off]}, then the 8 of the correction at {@code v[off + 16]}, in a fixed order. */
    static float sum24(float[] v, int off) {
        return (sum8(v, off) + sum8(v, off + 8)) + sum8(v, off + 16);
    }

    /**
     * {@link #rowsPlanar} in 512-bit lanes (AVX-512), against activations in {@link Q8Activations#planarWide} order
     * ({@code wx[t·wxStride]}; {@code dx}, {@code cx} as for {@link #rowsPlanar}). One 64-byte load covers a quad of
     * blocks (lanes 0-15 the pair b, b+1, lanes 16-31 the pair b+2, b+3); its four nibble planes are cut once and
     * multiplied with each token's activations; after each fold int lanes 0-7 and 8-15 belong to two blocks, whose
     * scales come from one 16-float load of the token's scales permuted twice ({@link #QUAD_EVEN}, {@link #QUAD_ODD}).
     * The same exact integer block sums, scales and correction as the 256-bit kernels, summed in another order, so
     * results differ from them by float rounding only; per token the 4-, 2- and 1-token bodies do the same float
     * operations in the same order, so a row's result is bit-identical alone or batched at this width too.
     *
     * <p>With an odd token count the last token runs the 1-token body; given {@code lastBytes} (non-null), that body
     * reads the token's activations as bytes ({@code lastBytes[0..)}, {@link #activationBytes}; its
     * {@code wx} row is not read) and widens them as it loads them: the same 16-bit values, so the same bits, from half
     * the memory. {@link Matmul} passes them for rows longer than {@value #BYTE_ACTIVATIONS_MIN_BLOCKS} blocks: a
     * decode step's activation row then takes 8 KiB of L1 at 8192 columns instead of 16, and the FFN down projection,
     * which streams its weights from DRAM while re-reading that row for every weight row, went from 8.6 to 13.6 GB/s
     * on one core ({@code DownProjRace}, BENCHMARKS.md); at 2048 columns the widening costs more than it saves
     * (0.93×), so short rows keep the shorts.
     */
    static void rowsPlanarWide(MemorySegment p, int paddedBlocks, int from, int to, short[] wx, int wxStride,
                               MemorySegment lastBytes, float[] dx, float[] cx, int dxStride, int tokens, MemorySegment y,
                               long yStride, float[] ss) {
        long rowBytes = PackedWeights.q4PlanarRowBytes(paddedBlocks);
        for (int r = from; r < to; r++) {
            long rowOff = r * rowBytes;
            int t = 0;
            for (; t + 4 <= tokens; t += 4) {
                rows4Wide(p, rowOff, paddedBlocks, wx, t * wxStride, wxStride, dx, cx, t * dxStride, dxStride, ss, y,
                        t * yStride + 4L * r, yStride);
            }
            if (t + 2 <= tokens) {
                rows2Wide(p, rowOff, paddedBlocks, wx, t * wxStride, wxStride, dx, cx, t * dxStride, dxStride, ss, y,
                        t * yStride + 4L * r, yStride);
                t += 2;
            }
            if (t < tokens) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r,
                        lastBytes != null ? dot1WideBytes(p, rowOff, paddedBlocks, lastBytes, dx, cx, t * dxStride, ss)
                                : dot1Wide(p, rowOff, paddedBlocks, wx, t * wxStride, dx, cx, t * dxStride, ss));
            }
        }
    }

    /** {@link #rows4} in 512-bit lanes: one weight row against 4 tokens. */
    private static void rows4Wide(MemorySegment p, long rowOff, int pb, short[] wx, int a0, int as, float[] dx, float[] cx,
                                  int d0, int ds, float[] ss, MemorySegment y, long y0, long ys) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        var c1 = FloatVector.zero(F);
        var c2 = FloatVector.zero(F);
        var c3 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var ws = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f);
            var s0 = ws.mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
            var s1 = ws.mul(FloatVector.fromArray(F, dx, d0 + ds + b));
            s1.intoArray(ss, pb + b);
            c1 = s1.fma(FloatVector.fromArray(F, cx, d0 + ds + b), c1);
            var s2 = ws.mul(FloatVector.fromArray(F, dx, d0 + 2 * ds + b));
            s2.intoArray(ss, 2 * pb + b);
            c2 = s2.fma(FloatVector.fromArray(F, cx, d0 + 2 * ds + b), c2);
            var s3 = ws.mul(FloatVector.fromArray(F, dx, d0 + 3 * ds + b));
            s3.intoArray(ss, 3 * pb + b);
            c3 = s3.fma(FloatVector.fromArray(F, cx, d0 + 3 * ds + b), c3);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        var e1 = FloatVector.zero(F512);
        var o1 = FloatVector.zero(F512);
        var e2 = FloatVector.zero(F512);
        var o2 = FloatVector.zero(F512);
        var e3 = FloatVector.zero(F512);
        var o3 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = a0 + 4 * WIDE * qd;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var n0 = q.and((short) 0xF);
            var n1 = q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF);
            var n2 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF);
            var n3 = q.lanewise(VectorOperators.LSHR, 12);
            // token 0
            var s = FloatVector.fromArray(F512, ss, b);
            var v = n0.mul(ShortVector.fromArray(S512, wx, a)).add(n1.mul(ShortVector.fromArray(S512, wx, a + 32))).reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_EVEN), e0);
            v = n2.mul(ShortVector.fromArray(S512, wx, a + 64)).add(n3.mul(ShortVector.fromArray(S512, wx, a + 96))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_ODD), o0);
            // token 1
            int a1 = a + as;
            s = FloatVector.fromArray(F512, ss, pb + b);
            v = n0.mul(ShortVector.fromArray(S512, wx, a1)).add(n1.mul(ShortVector.fromArray(S512, wx, a1 + 32))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_EVEN), e1);
            v = n2.mul(ShortVector.fromArray(S512, wx, a1 + 64)).add(n3.mul(ShortVector.fromArray(S512, wx, a1 + 96))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_ODD), o1);
            // token 2
            int a2 = a + 2 * as;
            s = FloatVector.fromArray(F512, ss, 2 * pb + b);
            v = n0.mul(ShortVector.fromArray(S512, wx, a2)).add(n1.mul(ShortVector.fromArray(S512, wx, a2 + 32))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e2 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_EVEN), e2);
            v = n2.mul(ShortVector.fromArray(S512, wx, a2 + 64)).add(n3.mul(ShortVector.fromArray(S512, wx, a2 + 96))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o2 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_ODD), o2);
            // token 3
            int a3 = a + 3 * as;
            s = FloatVector.fromArray(F512, ss, 3 * pb + b);
            v = n0.mul(ShortVector.fromArray(S512, wx, a3)).add(n1.mul(ShortVector.fromArray(S512, wx, a3 + 32))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e3 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_EVEN), e3);
            v = n2.mul(ShortVector.fromArray(S512, wx, a3 + 64)).add(n3.mul(ShortVector.fromArray(S512, wx, a3 + 96))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o3 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_ODD), o3);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.intoArray(ss, l + 16);
        e1.add(o1).intoArray(ss, l + 24);
        c1.intoArray(ss, l + 40);
        e2.add(o2).intoArray(ss, l + 48);
        c2.intoArray(ss, l + 64);
        e3.add(o3).intoArray(ss, l + 72);
        c3.intoArray(ss, l + 88);
        y.set(BlockLayouts.F32, y0, sum24(ss, l));
        y.set(BlockLayouts.F32, y0 + ys, sum24(ss, l + 24));
        y.set(BlockLayouts.F32, y0 + 2 * ys, sum24(ss, l + 48));
        y.set(BlockLayouts.F32, y0 + 3 * ys, sum24(ss, l + 72));
    }

    /** {@link #rows4Wide} for 2 tokens. */
    private static void rows2Wide(MemorySegment p, long rowOff, int pb, short[] wx, int a0, int as, float[] dx, float[] cx,
                                  int d0, int ds, float[] ss, MemorySegment y, long y0, long ys) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        var c1 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var ws = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f);
            var s0 = ws.mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
            var s1 = ws.mul(FloatVector.fromArray(F, dx, d0 + ds + b));
            s1.intoArray(ss, pb + b);
            c1 = s1.fma(FloatVector.fromArray(F, cx, d0 + ds + b), c1);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        var e1 = FloatVector.zero(F512);
        var o1 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = a0 + 4 * WIDE * qd;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var n0 = q.and((short) 0xF);
            var n1 = q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF);
            var n2 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF);
            var n3 = q.lanewise(VectorOperators.LSHR, 12);
            var s = FloatVector.fromArray(F512, ss, b);
            var v = n0.mul(ShortVector.fromArray(S512, wx, a)).add(n1.mul(ShortVector.fromArray(S512, wx, a + 32))).reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_EVEN), e0);
            v = n2.mul(ShortVector.fromArray(S512, wx, a + 64)).add(n3.mul(ShortVector.fromArray(S512, wx, a + 96))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_ODD), o0);
            int a1 = a + as;
            s = FloatVector.fromArray(F512, ss, pb + b);
            v = n0.mul(ShortVector.fromArray(S512, wx, a1)).add(n1.mul(ShortVector.fromArray(S512, wx, a1 + 32))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_EVEN), e1);
            v = n2.mul(ShortVector.fromArray(S512, wx, a1 + 64)).add(n3.mul(ShortVector.fromArray(S512, wx, a1 + 96))).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_ODD), o1);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.intoArray(ss, l + 16);
        e1.add(o1).intoArray(ss, l + 24);
        c1.intoArray(ss, l + 40);
        y.set(BlockLayouts.F32, y0, sum24(ss, l));
        y.set(BlockLayouts.F32, y0 + ys, sum24(ss, l + 24));
    }

    /** One weight row against one token in 512-bit lanes: {@link #rows4Wide}'s arithmetic for one token. */
    private static float dot1Wide(MemorySegment p, long rowOff, int pb, short[] wx, int a0, float[] dx, float[] cx, int d0,
                                  float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = a0 + 4 * WIDE * qd;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var s = FloatVector.fromArray(F512, ss, b);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 32)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_EVEN), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 64))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, wx, a + 96)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_ODD), o0);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.intoArray(ss, l + 16);
        return sum24(ss, l);
    }

    /**
     * {@link Q8Activations#quantizeRowQ4} with the quantization of each block in 512-bit lanes: the same outputs, bit
     * for bit. The block maximum is a max reduction (exact in any order); each quant is {@code Math.round}'s result
     * (round half up of |v|, then the sign), computed as the truncation plus one where the dropped fraction is at
     * least one half, exact for the |v| ≤ ~127.5 a finite block gives; a block whose maximum is not finite or whose
     * inverse scale is huge (subnormal maxima, where {@code Math.round} saturates) takes the scalar code. {@code tmp}
     * holds 16 ints.
     */
    static void quantizeRowQ4Wide(MemorySegment x, long xOffset, int cols, int paddedBlocks, short[] ax, int axOff,
                                  float[] dx, int dxOff, int[] tmp) {
        int blocks = cols / 32;
        for (int b = 0; b < paddedBlocks; b++) {
            int a = axOff + LANES * b;
            if (b >= blocks) {
                Q8Activations.padQ4Block(ax, a, dx, dxOff + b);
                continue;
            }
            long xb = xOffset + (long) b * 32 * Float.BYTES;
            var x0 = FloatVector.fromMemorySegment(F512, x, xb, LE);
            var x1 = FloatVector.fromMemorySegment(F512, x, xb + 64, LE);
            float amax = Math.max(x0.abs().reduceLanes(VectorOperators.MAX), x1.abs().reduceLanes(VectorOperators.MAX));
            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            if (!Float.isFinite(amax) || !(id < 0x1p100f)) {   // the scalar code for an unusual block
                Q8Activations.quantizeRowQ4(x, xb, 32, 1, ax, a, dx, dxOff + b);
                continue;
            }
            dx[dxOff + b] = Float.float16ToFloat(Float.floatToFloat16(d));
            var v = x0.mul(id);
            var av = v.abs();
            var tf = (FloatVector) ((IntVector) av.convert(VectorOperators.F2I, 0)).convert(VectorOperators.I2F, 0);
            var r = tf.add(1f, av.sub(tf).compare(VectorOperators.GE, 0.5f))
                    .lanewise(VectorOperators.NEG, v.compare(VectorOperators.LT, 0f));
            ((IntVector) r.convert(VectorOperators.F2I, 0)).intoArray(tmp, 0);
            for (int j = 0; j < 16; j++) {
                ax[a + j] = (short) tmp[j];
            }
            v = x1.mul(id);
            av = v.abs();
            tf = (FloatVector) ((IntVector) av.convert(VectorOperators.F2I, 0)).convert(VectorOperators.I2F, 0);
            r = tf.add(1f, av.sub(tf).compare(VectorOperators.GE, 0.5f))
                    .lanewise(VectorOperators.NEG, v.compare(VectorOperators.LT, 0f));
            ((IntVector) r.convert(VectorOperators.F2I, 0)).intoArray(tmp, 0);
            for (int j = 0; j < 16; j++) {
                ax[a + 16 + j] = (short) tmp[j];
            }
            for (int k = 0; k < 16; k++) {
                ax[a + 32 + k] = (short) (-8 * (ax[a + k] + ax[a + k + 16]) + ((k & 1) == 0 ? 8192 : -8192));
            }
        }
    }

    /**
     * {@link Q8Activations#planarWide} into bytes (the quants are int8 values held in shorts) for the 512-bit one-token body of
     * {@link #rowsPlanarWide}, half the cache footprint of the short row: per quad of blocks 128 bytes,
     * two 64-byte vectors, the first with planes 0 and 1 of {@link Q8Activations#planarWide}'s quad interleaved (byte 2k = plane 0's
     * lane k, byte 2k+1 = plane 1's), the second with planes 2 and 3, so that one 16-bit lane holds both and two
     * shifts split them.
     */
    static void activationBytes(short[] ax, int axOff, int paddedBlocks, MemorySegment bx, long bxOff) {
        for (int b = 0; b < paddedBlocks; b += 4) {
            long o = bxOff + WIDE * b;   // 128 bytes per quad
            for (int pair = 0; pair < 2; pair++) {
                int even = axOff + LANES * (b + pair);   // planarWide's plane 2·pair, lanes 0-15 (block b or b+1)
                int odd = even + 16;                         // plane 2·pair + 1: the same block's quants 16-31
                for (int half = 0; half < 2; half++) {       // lanes 16-31: the same of block b+2 or b+3
                    int e = even + half * 2 * LANES;
                    int d = odd + half * 2 * LANES;
                    ShortVector.fromArray(S256, ax, e).and((short) 0xFF)
                            .or(ShortVector.fromArray(S256, ax, d).lanewise(VectorOperators.LSHL, 8))
                            .intoMemorySegment(bx, o + 64L * pair + 32L * half, LE);
                }
            }
        }
    }

    /**
     * {@link #dot1Wide} on activations held as bytes ({@link #activationBytes}: per quad two 64-byte
     * vectors, each two nibble planes' activations interleaved byte by byte), widened as they are loaded: a 16-bit lane
     * holds plane 2p's value in its low byte and plane 2p+1's in its high byte, so a shift left and an arithmetic shift
     * right give the one, an arithmetic shift right the other. The same values, the same bits. (A 256-bit byte load
     * widened by {@code convertShape(B2S)} ran at a third of this speed inside the engine: C2 did not always
     * intrinsify the conversion there.)
     */
    private static float dot1WideBytes(MemorySegment p, long rowOff, int pb, MemorySegment bx, float[] dx, float[] cx, int d0,
                                       float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            long a = 128L * qd;
            var lo = ShortVector.fromMemorySegment(S512, bx, a, LE);        // planes 0 and 1, byte-interleaved
            var hi = ShortVector.fromMemorySegment(S512, bx, a + 64, LE);   // planes 2 and 3
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var s = FloatVector.fromArray(F512, ss, b);
            var v = q.and((short) 0xF).mul(lo.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(lo.lanewise(VectorOperators.ASHR, 8)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_EVEN), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(hi.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(hi.lanewise(VectorOperators.ASHR, 8)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(s.rearrange(QUAD_ODD), o0);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.intoArray(ss, l + 16);
        return sum24(ss, l);
    }

}
