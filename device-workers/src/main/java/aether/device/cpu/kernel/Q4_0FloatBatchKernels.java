package aether.device.cpu.kernel;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Multi-row kernels for {@link PackedWeights.Layout#Q4_0_PLANAR} weights with f32 activations: each pair of weight
 * blocks is loaded once and dequantized once to f32 in registers ({@code (n - 8)·d}, exact: one FMA {@code n·d - 8d}
 * whose result has at most 15 significant bits), then multiplied into every token of the group with one FMA per 16
 * (or 8) weights and token. Per token that is 4 FMAs per block pair at 512 bits against the int16 kernels' ~16
 * vector µops ({@link Q4_0BatchKernels}: products in 16-bit lanes, folds, conversions), so the per-token work — all
 * that is not shared between the rows of a batch — is about a quarter, at the price of the dequantization (~15 µops per
 * pair, shared by the group). The int16 kernels stay faster for one row; this is for the decode steps of several
 * sequences.
 *
 * <p>Numerics: the activations stay f32 (no Q8 rounding), so results differ from the int16 kernels' by that rounding.
 * Per token the arithmetic is the same in every group size (two accumulators, FMAs in the same order, a fixed-order
 * lane sum), so a token's result is bit-identical whatever the number of tokens in the call and whatever the JIT tier,
 * at a given vector width.
 *
 * <p>Activations are a heap copy {@code xf} with {@code paddedBlocks·32} floats per token (zeros past the row), so the
 * loop needs no tail for the padding blocks (their scale and nibbles are 0, so their weights are 0) and C2 removes the
 * range checks. Per thread, {@code ss} holds {@link #scratchFloats} floats: the row's block scales and {@code -8·d}s,
 * then the lanes to sum.
 */
final class Q4_0FloatBatchKernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final VectorSpecies<Float> FW = FloatVector.SPECIES_512;
    static final VectorSpecies<Integer> IW = IntVector.SPECIES_512;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    static final VectorSpecies<Short> S512 = ShortVector.SPECIES_512;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Q4_0FloatBatchKernels() {}

    /** Weight rows whose accumulators are kept while the pass runs over one chunk of the activations. */
    static final int ROW_BLOCK = 8;
    /** Block pairs per chunk: 512 activations per token (2 KiB), so 8 tokens' chunks (16 KiB) stay in L1. */
    static final int CHUNK_PAIRS = 8;
    /** Floats per (row, token) accumulator slot: two chains of up to 16 lanes. */
    private static final int SLOT = 32;

    /** Floats of per-thread scratch for {@code tokens}: the accumulators of a row block, then 16 lanes to sum. */
    static int scratchFloats(int tokens) {
        return ROW_BLOCK * tokens * SLOT + 16;
    }

    /** Floats of the second per-thread scratch: a row block's scales for one chunk. */
    static final int SCALE_FLOATS = ROW_BLOCK * 2 * CHUNK_PAIRS;

    /**
     * {@code y[t][r] = Σ_i xf[t·xs + i] · W[r][i]} for weight rows [from, to) and tokens [0, tokens), 512-bit
     * ({@code wide}) or 256-bit vectors. Loop order: blocks of {@value #ROW_BLOCK} weight rows; per block, chunks of
     * {@value #CHUNK_PAIRS} block pairs; per chunk, each row of the block against the tokens in groups of 8 (512-bit
     * only), 4, then 1, each group continuing its accumulators from {@code acc}. A chunk of every token's activations
     * is thus read from L1 by all rows of the block (the whole rows of 8 tokens, 64 KiB at 2048 inputs, would come from
     * L2 for every row). Storing and reloading an accumulator changes no bit, so a token's result is that of one pass
     * over the row, whatever its group.
     */
    static void rowsPlanar(MemorySegment p, int pb, int from, int to, float[] xf, int xs, int tokens, MemorySegment y,
                           long ys, float[] acc, float[] sc, boolean wide) {
        long rowBytes = PackedWeights.q4PlanarRowBytes(pb);
        int pairs = pb / 2;
        int lanes = ROW_BLOCK * tokens * SLOT;
        for (int rb = from; rb < to; rb += ROW_BLOCK) {
            int nr = Math.min(ROW_BLOCK, to - rb);
            java.util.Arrays.fill(acc, 0, nr * tokens * SLOT, 0f);
            for (int k0 = 0; k0 < pairs; k0 += CHUNK_PAIRS) {
                int k1 = Math.min(pairs, k0 + CHUNK_PAIRS);
                if (wide) {
                    wideTiles(p, rb * rowBytes, rowBytes, nr, pb, k0, k1, xf, xs, tokens, acc, sc);
                    continue;
                }
                for (int i = 0; i < nr; i++) {
                    long rowOff = (rb + i) * rowBytes;
                    int a0 = i * tokens * SLOT;
                    int t = 0;
                    for (; t + 4 <= tokens; t += 4) {
                        narrow4(p, rowOff, pb, k0, k1, xf, t * xs, xs, acc, a0 + t * SLOT);
                    }
                    for (; t < tokens; t++) {
                        narrow1(p, rowOff, pb, k0, k1, xf, t * xs, acc, a0 + t * SLOT);
                    }
                }
            }
            for (int i = 0; i < nr; i++) {
                for (int t = 0; t < tokens; t++) {
                    int a = (i * tokens + t) * SLOT;
                    float v;
                    if (wide) {
                        v = sum16(acc, a);
                    } else {
                        FloatVector.fromArray(F, acc, a).add(FloatVector.fromArray(F, acc, a + 16)).intoArray(acc, lanes);
                        v = sum8(acc, lanes);
                    }
                    y.set(BlockLayouts.F32, t * ys + 4L * (rb + i), v);
                }
            }
        }
    }

    /** Lanes 8-15: the second pair of a 64-byte load. */
    private static final VectorMask<Float> HIGH = VectorMask.fromLong(FW, 0xFF00L);

    /**
     * Rows [0, nr) of a row block (the first at {@code rowOff0}) over pairs [k0, k1): the chunk's block scales of every
     * row to {@code sc} first (scalar f16 conversions, outside the vector loops), then each row against the tokens
     * in groups of 8, 4, then 1.
     */
    private static void wideTiles(MemorySegment p, long rowOff0, long rowBytes, int nr, int pb, int k0, int k1, float[] xf,
                                  int xs, int tokens, float[] acc, float[] sc) {
        int chunkBlocks = 2 * (k1 - k0);
        for (int i = 0; i < nr; i++) {
            long off = rowOff0 + i * rowBytes + 4L * k0;
            for (int b = 0; b < chunkBlocks; b++) {
                sc[i * 2 * CHUNK_PAIRS + b] = Float.float16ToFloat(p.get(BlockLayouts.I16, off + 2L * b));
            }
        }
        for (int i = 0; i < nr; i++) {
            long r0 = rowOff0 + i * rowBytes;
            int c0 = i * tokens * SLOT;
            int e0 = i * 2 * CHUNK_PAIRS;
            int t = 0;
            for (; t + 8 <= tokens; t += 8) {
                wide1x8(p, r0, pb, k0, k1, xf, t * xs, xs, acc, c0 + t * SLOT, sc, e0);
            }
            for (; t + 4 <= tokens; t += 4) {
                wide1x4(p, r0, pb, k0, k1, xf, t * xs, xs, acc, c0 + t * SLOT, sc, e0);
            }
            for (; t < tokens; t++) {
                wide1x1(p, r0, pb, k0, k1, xf, t * xs, xs, acc, c0 + t * SLOT, sc, e0);
            }
        }
    }

    /**
     * Activations of one token in the order the 512-bit kernels read them: the weights of two block pairs (128
     * elements) are loaded as 16 int lanes, lane k holding shorts 2k and 2k+1 of the first pair (k &lt; 8) or of the
     * second; nibble plane s (bits 4s..4s+3) of lane k is element {@code 64·(k/8) + 32·((s/2)%2) + 16·(s%2) + 2·(k%8)
     * + s/4} of the 128. So {@code xf[g·128 + 16·s + k]} = that element of group g; zeros past {@code cols} up to
     * {@code paddedBlocks·32}.
     */
    static void packWide(MemorySegment x, long xOff, int cols, int paddedBlocks, float[] xf, int off) {
        int n = paddedBlocks * 32;
        for (int g = 0; g < n; g += 128) {
            for (int s = 0; s < 8; s++) {
                for (int k = 0; k < 16; k++) {
                    int e = g + 64 * (k >> 3) + 32 * ((s >> 1) & 1) + 16 * (s & 1) + 2 * (k & 7) + (s >> 2);
                    xf[off + g + 16 * s + k] = e < cols ? x.get(BlockLayouts.F32, xOff + 4L * e) : 0f;
                }
            }
        }
    }

    // ---- 512 bits: one 64-byte load holds two block pairs (see packWide); one accumulator per (row, token), FMAs in
    // plane order, so every group size does the same operations for a given (row, token). -------------------------

    private static void wide1x8(MemorySegment p, long rowOff, int pb, int k0, int k1, float[] xf, int x0, int xs, float[] acc, int c0, float[] sc, int e0) {
        long qOff = rowOff + 2L * pb;
        var a0 = FloatVector.fromArray(FW, acc, c0 + 0);
        var a1 = FloatVector.fromArray(FW, acc, c0 + 32);
        var a2 = FloatVector.fromArray(FW, acc, c0 + 64);
        var a3 = FloatVector.fromArray(FW, acc, c0 + 96);
        var a4 = FloatVector.fromArray(FW, acc, c0 + 128);
        var a5 = FloatVector.fromArray(FW, acc, c0 + 160);
        var a6 = FloatVector.fromArray(FW, acc, c0 + 192);
        var a7 = FloatVector.fromArray(FW, acc, c0 + 224);
        for (int pr = k0; pr < k1; pr += 2) {
            var q = IntVector.fromMemorySegment(IW, p, qOff + 32L * pr, LE);
            int i = e0 + 2 * (pr - k0);
            var d0 = FloatVector.broadcast(FW, sc[i]).blend(sc[i + 2], HIGH);
            var d1 = FloatVector.broadcast(FW, sc[i + 1]).blend(sc[i + 3], HIGH);
            var m0 = d0.mul(-8f);
            var m1 = d1.mul(-8f);
            int o = x0 + 64 * pr;
            for (int s = 0; s < 8; s++) {   // a loop, not 8 copies: C1 runs out of registers on the copies and C2 never comes
                boolean second = (s & 2) != 0;
                var w = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4 * s).and(0xF).convert(VectorOperators.I2F, 0))
                        .fma(second ? d1 : d0, second ? m1 : m0);
                int os = o + 16 * s;
                a0 = w.fma(FloatVector.fromArray(FW, xf, os), a0);
                a1 = w.fma(FloatVector.fromArray(FW, xf, os + xs), a1);
                a2 = w.fma(FloatVector.fromArray(FW, xf, os + 2 * xs), a2);
                a3 = w.fma(FloatVector.fromArray(FW, xf, os + 3 * xs), a3);
                a4 = w.fma(FloatVector.fromArray(FW, xf, os + 4 * xs), a4);
                a5 = w.fma(FloatVector.fromArray(FW, xf, os + 5 * xs), a5);
                a6 = w.fma(FloatVector.fromArray(FW, xf, os + 6 * xs), a6);
                a7 = w.fma(FloatVector.fromArray(FW, xf, os + 7 * xs), a7);
            }
        }
        a0.intoArray(acc, c0 + 0);
        a1.intoArray(acc, c0 + 32);
        a2.intoArray(acc, c0 + 64);
        a3.intoArray(acc, c0 + 96);
        a4.intoArray(acc, c0 + 128);
        a5.intoArray(acc, c0 + 160);
        a6.intoArray(acc, c0 + 192);
        a7.intoArray(acc, c0 + 224);
    }

    private static void wide1x4(MemorySegment p, long rowOff, int pb, int k0, int k1, float[] xf, int x0, int xs, float[] acc, int c0, float[] sc, int e0) {
        long qOff = rowOff + 2L * pb;
        var a0 = FloatVector.fromArray(FW, acc, c0 + 0);
        var a1 = FloatVector.fromArray(FW, acc, c0 + 32);
        var a2 = FloatVector.fromArray(FW, acc, c0 + 64);
        var a3 = FloatVector.fromArray(FW, acc, c0 + 96);
        for (int pr = k0; pr < k1; pr += 2) {
            var q = IntVector.fromMemorySegment(IW, p, qOff + 32L * pr, LE);
            int i = e0 + 2 * (pr - k0);
            var d0 = FloatVector.broadcast(FW, sc[i]).blend(sc[i + 2], HIGH);
            var d1 = FloatVector.broadcast(FW, sc[i + 1]).blend(sc[i + 3], HIGH);
            var m0 = d0.mul(-8f);
            var m1 = d1.mul(-8f);
            int o = x0 + 64 * pr;
            for (int s = 0; s < 8; s++) {   // a loop, not 8 copies: C1 runs out of registers on the copies and C2 never comes
                boolean second = (s & 2) != 0;
                var w = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4 * s).and(0xF).convert(VectorOperators.I2F, 0))
                        .fma(second ? d1 : d0, second ? m1 : m0);
                int os = o + 16 * s;
                a0 = w.fma(FloatVector.fromArray(FW, xf, os), a0);
                a1 = w.fma(FloatVector.fromArray(FW, xf, os + xs), a1);
                a2 = w.fma(FloatVector.fromArray(FW, xf, os + 2 * xs), a2);
                a3 = w.fma(FloatVector.fromArray(FW, xf, os + 3 * xs), a3);
            }
        }
        a0.intoArray(acc, c0 + 0);
        a1.intoArray(acc, c0 + 32);
        a2.intoArray(acc, c0 + 64);
        a3.intoArray(acc, c0 + 96);
    }

    private static void wide1x1(MemorySegment p, long rowOff, int pb, int k0, int k1, float[] xf, int x0, int xs, float[] acc, int c0, float[] sc, int e0) {
        long qOff = rowOff + 2L * pb;
        var a0 = FloatVector.fromArray(FW, acc, c0 + 0);
        for (int pr = k0; pr < k1; pr += 2) {
            var q = IntVector.fromMemorySegment(IW, p, qOff + 32L * pr, LE);
            int i = e0 + 2 * (pr - k0);
            var d0 = FloatVector.broadcast(FW, sc[i]).blend(sc[i + 2], HIGH);
            var d1 = FloatVector.broadcast(FW, sc[i + 1]).blend(sc[i + 3], HIGH);
            var m0 = d0.mul(-8f);
            var m1 = d1.mul(-8f);
            int o = x0 + 64 * pr;
            for (int s = 0; s < 8; s++) {   // a loop, not 8 copies: C1 runs out of registers on the copies and C2 never comes
                boolean second = (s & 2) != 0;
                var w = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4 * s).and(0xF).convert(VectorOperators.I2F, 0))
                        .fma(second ? d1 : d0, second ? m1 : m0);
                int os = o + 16 * s;
                a0 = w.fma(FloatVector.fromArray(FW, xf, os), a0);
            }
        }
        a0.intoArray(acc, c0 + 0);
    }

    private static float scale(MemorySegment p, long rowOff, int block) {
        return Float.float16ToFloat(p.get(BlockLayouts.I16, rowOff + 2L * block));
    }

    /** The 16 lanes at {@code v[off]} summed in a fixed order (see {@link Q4_0BatchKernels}). */
    private static float sum16(float[] v, int off) {
        return (((v[off] + v[off + 1]) + (v[off + 2] + v[off + 3])) + ((v[off + 4] + v[off + 5]) + (v[off + 6] + v[off + 7])))
                + (((v[off + 8] + v[off + 9]) + (v[off + 10] + v[off + 11])) + ((v[off + 12] + v[off + 13]) + (v[off + 14] + v[off + 15])));
    }

    /** 8 lanes summed in the order of {@link #sum16}'s first half. */
    private static float sum8(float[] v, int off) {
        return ((v[off] + v[off + 1]) + (v[off + 2] + v[off + 3])) + ((v[off + 4] + v[off + 5]) + (v[off + 6] + v[off + 7]));
    }

    // ---- 256 bits: each half of a pair (8 shorts) widens to one int vector; plane j of half h holds the 8
    // activations at 16·j + 8·h of the pair's 64 ----------------------------------------------------------------

    private static void narrow4(MemorySegment p, long rowOff, int pb, int k0, int k1, float[] xf, int x0, int xs, float[] acc, int c0) {
        long qOff = rowOff + 2L * pb;
        var a0 = FloatVector.fromArray(F, acc, c0 + 0);
        var b0 = FloatVector.fromArray(F, acc, c0 + 16);
        var a1 = FloatVector.fromArray(F, acc, c0 + 32);
        var b1 = FloatVector.fromArray(F, acc, c0 + 48);
        var a2 = FloatVector.fromArray(F, acc, c0 + 64);
        var b2 = FloatVector.fromArray(F, acc, c0 + 80);
        var a3 = FloatVector.fromArray(F, acc, c0 + 96);
        var b3 = FloatVector.fromArray(F, acc, c0 + 112);
        for (int pr = k0; pr < k1; pr++) {
            int b = 2 * pr;
            float s0 = scale(p, rowOff, b);
            float s1 = scale(p, rowOff, b + 1);
            var d0 = FloatVector.broadcast(F, s0);
            var m0 = FloatVector.broadcast(F, -8f * s0);
            var d1 = FloatVector.broadcast(F, s1);
            var m1 = FloatVector.broadcast(F, -8f * s1);
            for (int h = 0; h < 2; h++) {
                var q = (IntVector) ShortVector.fromMemorySegment(S128, p, qOff + 32L * pr + 16L * h, LE).convertShape(VectorOperators.S2I, I, 0);
                var w0 = ((FloatVector) q.and(0xF).convert(VectorOperators.I2F, 0)).fma(d0, m0);
                var w1 = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).fma(d0, m0);
                var w2 = ((FloatVector) q.lanewise(VectorOperators.LSHR, 8).and(0xF).convert(VectorOperators.I2F, 0)).fma(d1, m1);
                var w3 = ((FloatVector) q.lanewise(VectorOperators.LSHR, 12).and(0xF).convert(VectorOperators.I2F, 0)).fma(d1, m1);
                int o = x0 + 64 * pr + 8 * h;
                a0 = w0.fma(FloatVector.fromArray(F, xf, o), a0);
                b0 = w1.fma(FloatVector.fromArray(F, xf, o + 16), b0);
                a0 = w2.fma(FloatVector.fromArray(F, xf, o + 32), a0);
                b0 = w3.fma(FloatVector.fromArray(F, xf, o + 48), b0);
                o += xs;
                a1 = w0.fma(FloatVector.fromArray(F, xf, o), a1);
                b1 = w1.fma(FloatVector.fromArray(F, xf, o + 16), b1);
                a1 = w2.fma(FloatVector.fromArray(F, xf, o + 32), a1);
                b1 = w3.fma(FloatVector.fromArray(F, xf, o + 48), b1);
                o += xs;
                a2 = w0.fma(FloatVector.fromArray(F, xf, o), a2);
                b2 = w1.fma(FloatVector.fromArray(F, xf, o + 16), b2);
                a2 = w2.fma(FloatVector.fromArray(F, xf, o + 32), a2);
                b2 = w3.fma(FloatVector.fromArray(F, xf, o + 48), b2);
                o += xs;
                a3 = w0.fma(FloatVector.fromArray(F, xf, o), a3);
                b3 = w1.fma(FloatVector.fromArray(F, xf, o + 16), b3);
                a3 = w2.fma(FloatVector.fromArray(F, xf, o + 32), a3);
                b3 = w3.fma(FloatVector.fromArray(F, xf, o + 48), b3);
            }
        }
        a0.intoArray(acc, c0 + 0);
        b0.intoArray(acc, c0 + 16);
        a1.intoArray(acc, c0 + 32);
        b1.intoArray(acc, c0 + 48);
        a2.intoArray(acc, c0 + 64);
        b2.intoArray(acc, c0 + 80);
        a3.intoArray(acc, c0 + 96);
        b3.intoArray(acc, c0 + 112);
    }

    private static void narrow1(MemorySegment p, long rowOff, int pb, int k0, int k1, float[] xf, int x0, float[] acc, int c0) {
        long qOff = rowOff + 2L * pb;
        var a0 = FloatVector.fromArray(F, acc, c0 + 0);
        var b0 = FloatVector.fromArray(F, acc, c0 + 16);
        for (int pr = k0; pr < k1; pr++) {
            int b = 2 * pr;
            float s0 = scale(p, rowOff, b);
            float s1 = scale(p, rowOff, b + 1);
            var d0 = FloatVector.broadcast(F, s0);
            var m0 = FloatVector.broadcast(F, -8f * s0);
            var d1 = FloatVector.broadcast(F, s1);
            var m1 = FloatVector.broadcast(F, -8f * s1);
            for (int h = 0; h < 2; h++) {
                var q = (IntVector) ShortVector.fromMemorySegment(S128, p, qOff + 32L * pr + 16L * h, LE).convertShape(VectorOperators.S2I, I, 0);
                var w0 = ((FloatVector) q.and(0xF).convert(VectorOperators.I2F, 0)).fma(d0, m0);
                var w1 = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).fma(d0, m0);
                var w2 = ((FloatVector) q.lanewise(VectorOperators.LSHR, 8).and(0xF).convert(VectorOperators.I2F, 0)).fma(d1, m1);
                var w3 = ((FloatVector) q.lanewise(VectorOperators.LSHR, 12).and(0xF).convert(VectorOperators.I2F, 0)).fma(d1, m1);
                int o = x0 + 64 * pr + 8 * h;
                a0 = w0.fma(FloatVector.fromArray(F, xf, o), a0);
                b0 = w1.fma(FloatVector.fromArray(F, xf, o + 16), b0);
                a0 = w2.fma(FloatVector.fromArray(F, xf, o + 32), a0);
                b0 = w3.fma(FloatVector.fromArray(F, xf, o + 48), b0);
            }
        }
        a0.intoArray(acc, c0 + 0);
        b0.intoArray(acc, c0 + 16);
    }
}
