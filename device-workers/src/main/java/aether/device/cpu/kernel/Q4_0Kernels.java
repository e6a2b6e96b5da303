package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q4_0_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q4_0_QS;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector kernels for Q4_0 weights (block: f16 d, 16 bytes; element j&lt;16 is the low nibble of byte j, element
 * j≥16 the high nibble of byte j-16, each minus 8; value = d·q).
 *
 * <p>What C2 (JDK 25, AVX2) does well and badly here, measured: (1) only "part 0" shape conversions of an 8-lane
 * byte vector are intrinsified well — {@code castShape(F, 1)} of a 16-byte vector ran ~2× slower; (2) AVX2 has no
 * byte shifts, so nibbles are cut after widening to short or int lanes; (3) no helper method may take or return a
 * vector: when the compile unit grows past C2's NodeCountInliningCutoff such a helper stays a call and every vector
 * it passes is boxed on the heap (a 5× slowdown seen with a 2-block unroll), so bodies are written out inline; past
 * that cutoff even a small scalar helper (the f16 scale read) stays a call and spills every live vector register;
 * (4) computing 2 or 4 rows per pass over x (llama.cpp's multi-row GEMV) measured 10-20% slower than one row here:
 * with 4 accumulators, 4 shared activation vectors and the temporaries C2 runs out of the 16 ymm registers, spills
 * accumulators and re-broadcasts constants every block, while the one-row loop, which C2 unrolls 4 blocks deep,
 * already takes its activations as FMA memory operands. Per block the kernel is bound by ~23 vector µops
 * (widen, mask/shift, convert, FMA, scale), not by the 18 bytes it reads.
 */
final class Q4_0Kernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    static final VectorSpecies<Short> S512 = ShortVector.SPECIES_512;
    /** Int lanes 8-15 of a 512-bit fold: the second pair of a quad of blocks. */
    static final VectorMask<Float> HIGH8 = VectorMask.fromLong(F512, 0xFF00L);

    private Q4_0Kernels() {}

    /**
     * Float path (after llama3.java's Q4_0 vectorDot), with the "- 8" taken out of the per-element work:
     * Σ(q-8)·x = Σq·x - 8·Σx. {@code sums[sOff + 4b]} holds -Σx of block b ({@link #blockSums}), computed once per
     * activation row and shared by every weight row; broadcast into the 8 lanes it starts each block's FMA chain, so
     * the lanes' sum carries -8·Σx. Nibbles are zero-extended, so the high nibble is one logical shift. Per block of
     * 18 bytes this leaves 2 widening loads, 2 ands, 2 shifts, 4 conversions, 4 FMAs and the scale (vs 4 more
     * subtractions before); C2 unrolls the loop 4 blocks deep.
     */
    static float dot(MemorySegment w, long wOff, MemorySegment x, long xOff, MemorySegment sums, long sOff, int cols) {
        var acc = FloatVector.zero(F);
        int blocks = cols / 32;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_0_BYTES;
            long xb = xOff + b * 128L;
            var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_0_QS, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_0_QS + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var p = ((FloatVector) i0.and(0xF).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromMemorySegment(F, x, xb, LE),
                    FloatVector.broadcast(F, sums.get(BlockLayouts.F32, sOff + 4L * b)));
            p = ((FloatVector) i1.and(0xF).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromMemorySegment(F, x, xb + 32, LE), p);
            p = ((FloatVector) i0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.fromMemorySegment(F, x, xb + 64, LE), p);
            p = ((FloatVector) i1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.fromMemorySegment(F, x, xb + 96, LE), p);
            // the f16 read written out: a helper call here stays a call once the unrolled unit passes C2's node cutoff
            acc = p.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(BlockLayouts.I16, blk))), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /**
     * Writes -Σx of each 32-element block of the activation row at {@code x[xOff]} to {@code dst[dstOff + 4b]}, summed
     * in double and rounded once, so that the folded "- 8" of {@link #dot} adds one rounding per block.
     */
    static void blockSums(MemorySegment x, long xOff, int cols, MemorySegment dst, long dstOff) {
        for (int b = 0; b < cols / 32; b++) {
            double s = 0;
            for (int j = 0; j < 32; j++) {
                s += x.get(BlockLayouts.F32, xOff + b * 128L + 4L * j);
            }
            dst.set(BlockLayouts.F32, dstOff + 4L * b, (float) -s);
        }
    }

    /**
     * Int8 path on the ggml layout, in 16-bit lanes, against {@link Q8Activations#quantizeRowQ4}'s arrays: the 16
     * quant bytes zero-extended to 16 shorts (vpmovzxbw) give the low nibbles (elements 0-15) with one mask and the
     * high ones (16-31) with one shift, multiplied by the int16 activations (vpmullw) and summed with the correction
     * lanes; each pair of lanes folds into an int (mask, arithmetic shift, add: see quantizeRowQ4 for the bias), one
     * conversion and one FMA with {@code ss[b]} = d_w·d_x per block, computed in a scalar pre-pass into the caller's
     * scratch. The block sum is exact, like ggml's isum. Measured within ±5% of the float path on one core; the
     * planar layout ({@link #dotPlanar}) is faster still.
     */
    static float dotQ8(MemorySegment w, long wOff, short[] ax, int axOff, float[] dx, int dxOff, int blocks, float[] ss) {
        for (int b = 0; b < blocks; b++) {
            ss[b] = Float.float16ToFloat(w.get(BlockLayouts.I16, wOff + (long) b * Q4_0_BYTES)) * dx[dxOff + b];
        }
        var acc = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            int a = axOff + Q8Activations.Q4_LANES * b;
            var q = (ShortVector) ByteVector.fromMemorySegment(B128, w, wOff + (long) b * Q4_0_BYTES + Q4_0_QS, LE)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, S256, 0);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).mul(ShortVector.fromArray(S256, ax, a + 16)))
                    .add(ShortVector.fromArray(S256, ax, a + 32)).reinterpretAsInts();
            var i = v.and(0xFFFF).add(v.lanewise(VectorOperators.ASHR, 16));
            acc = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b]), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /**
     * Int8 path on {@link PackedWeights.Layout#Q4_0_PLANAR} rows ({@code paddedBlocks} blocks, a multiple of 8). The 8
     * f16 scales of 8 blocks are widened exactly in vector lanes (sign, then exponent and mantissa shifted into f32
     * position and multiplied by 2¹¹², which also gets subnormal halves right; Inf/NaN scales never reach this
     * layout) and multiplied by the 8 activation scales into {@code ss}; the same pass folds Q4_0's "- 8" in as
     * Σ_b ss_b·cx_b with {@code cx_b = -8·Σ q_x} of the block ({@link Q8Activations#blockCorrections}), one FMA per 8
     * blocks. Then per pair of blocks one 32-byte load gives the four nibble planes (shift and mask each) for four
     * vpmullw against the activations, two adds, two three-op folds ({@code (v + (v << 16)) >> 16}: the pair's sum,
     * |sum| ≤ 4·15·127, sits exact in the upper half), two conversions and two FMAs into two accumulators: ~11.5
     * vector µops per block (12.5 with the correction lanes of {@link #dotQ8}), no misaligned or widening load.
     */
    static float dotPlanar(MemorySegment p, long rowOff, int paddedBlocks, short[] ax, int axOff, float[] dx, int dxOff,
                           float[] cx, float[] ss) {
        long qOff = rowOff + 2L * paddedBlocks;
        var corr = FloatVector.zero(F);
        for (int b = 0; b < paddedBlocks; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var sv = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, dxOff + b));
            sv.intoArray(ss, b);
            corr = sv.fma(FloatVector.fromArray(F, cx, dxOff + b), corr);
        }
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        for (int pr = 0, pairs = paddedBlocks / 2; pr < pairs; pr++) {
            int b = 2 * pr;
            int a = axOff + 2 * Q8Activations.Q4_LANES * pr;
            var q = ShortVector.fromMemorySegment(S256, p, qOff + 16L * b, LE);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a + 16)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            acc0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b]), acc0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a + 48))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S256, ax, a + 64)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            acc1 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b + 1]), acc1);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        FloatVector lanes = acc0.add(acc1).add(corr);
        lanes = lanes.add(lanes.rearrange(LaneSums.HALVES));
        lanes = lanes.add(lanes.rearrange(LaneSums.QUARTERS));
        return lanes.add(lanes.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /**
     * {@link #dotPlanar} in 512-bit lanes (AVX-512) on the same planar weights: one 64-byte load covers a quad of
     * blocks (lanes 0-15 the pair b, b+1; lanes 16-31 the pair b+2, b+3), the activations come rearranged to match
     * ({@link Q8Activations#planarWide}), and each fold gives 8 int lanes of block b and 8 of block b+2 (or b+1 and
     * b+3), scaled by a two-valued vector (a broadcast and a masked broadcast). ~27 vector µops per 4 blocks against
     * ~46 for the 256-bit kernel. Same exact integer sums, same scales and correction. Raced against {@link #dotPlanar}
     * in one JVM ([1,4096]×[4096,14336], KernelRace, EPYC Zen 4, load ~4-5): 1.07× best / 1.08× median on one thread,
     * 1.13× / 1.19× on two — far below the µop ratio because Zen 4 runs 512-bit integer ops as two 256-bit halves, so
     * the kernel stays bound by execution ports (~0.54 of the probe's bandwidth on one thread, from 0.51).
     */
    static float dotPlanarWide(MemorySegment p, long rowOff, int paddedBlocks, short[] wx, int wxOff, float[] dx, int dxOff,
                               float[] cx, float[] ss) {
        long qOff = rowOff + 2L * paddedBlocks;
        var corr = FloatVector.zero(F);
        for (int b = 0; b < paddedBlocks; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var sv = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, dxOff + b));
            sv.intoArray(ss, b);
            corr = sv.fma(FloatVector.fromArray(F, cx, dxOff + b), corr);
        }
        var acc0 = FloatVector.zero(F512);
        var acc1 = FloatVector.zero(F512);
        for (int qd = 0, quads = paddedBlocks / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = wxOff + 4 * Q8Activations.Q4_WIDE_LANES * qd;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 32)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            acc0 = ((FloatVector) i.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F512, ss[b]).blend(ss[b + 2], HIGH8), acc0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 64))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, wx, a + 96)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            acc1 = ((FloatVector) i1.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F512, ss[b + 1]).blend(ss[b + 3], HIGH8), acc1);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        FloatVector lanes = acc0.add(acc1);
        lanes = lanes.add(lanes.rearrange(LaneSums.HALVES_512));
        lanes = lanes.add(lanes.rearrange(LaneSums.QUARTERS_512));
        lanes = lanes.add(lanes.rearrange(LaneSums.EIGHTHS_512));
        corr = corr.add(corr.rearrange(LaneSums.HALVES));
        corr = corr.add(corr.rearrange(LaneSums.QUARTERS));
        return lanes.add(lanes.rearrange(LaneSums.PAIRS_512)).lane(0)
                + corr.add(corr.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /** {@code y[t][r] = dotPlanarWide(P[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsPlanarWide(MemorySegment p, int paddedBlocks, int from, int to, short[] wx, int wxStride, float[] dx,
                               float[] cx, int dxStride, int tokens, MemorySegment y, long yStride, float[] ss) {
        long rowBytes = PackedWeights.q4PlanarRowBytes(paddedBlocks);
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r,
                        dotPlanarWide(p, r * rowBytes, paddedBlocks, wx, t * wxStride, dx, t * dxStride, cx, ss));
            }
        }
    }

    /**
     * Writes the nibble planes of one {@link PackedWeights.Layout#Q4_0_PLANAR} row: for each whole pair of ggml blocks
     * at {@code w[src]}, the 16 quant bytes of each widened to 16 shorts and the second shifted into the high byte
     * (lane k = qs_b[k] | qs_{b+1}[k] << 8), 32 bytes to {@code p[dst + 32·pair]}. Returns the pairs written; an odd
     * last block is the caller's (scalar) job.
     */
    static int packPlanarPairs(MemorySegment w, long src, int blocks, MemorySegment p, long dst) {
        int pairs = blocks / 2;
        for (int pr = 0; pr < pairs; pr++) {
            long q0 = src + 2L * pr * Q4_0_BYTES + Q4_0_QS;
            var lo = (ShortVector) ByteVector.fromMemorySegment(B128, w, q0, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S256, 0);
            var hi = (ShortVector) ByteVector.fromMemorySegment(B128, w, q0 + Q4_0_BYTES, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S256, 0);
            lo.or(hi.lanewise(VectorOperators.LSHL, 8)).intoMemorySegment(p, dst + 32L * pr, LE);
        }
        return pairs;
    }

    /** Dequantizes {@code blocks} blocks at {@code w[wOff]} to f32 at {@code dst[dstOff]}. */
    static void dequant(MemorySegment w, long wOff, int blocks, float[] dst, int dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_0_BYTES;
            int o = dstOff + 32 * b;
            var d = FloatVector.broadcast(F, BlockLayouts.f16(w, blk));
            var d8 = d.mul(8f);
            var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_0_QS, LE).convertShape(VectorOperators.B2I, I, 0);
            var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_0_QS + 8, LE).convertShape(VectorOperators.B2I, I, 0);
            ((FloatVector) i0.and(0xF).convert(VectorOperators.I2F, 0)).mul(d).sub(d8).intoArray(dst, o);
            ((FloatVector) i1.and(0xF).convert(VectorOperators.I2F, 0)).mul(d).sub(d8).intoArray(dst, o + 8);
            ((FloatVector) i0.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).mul(d).sub(d8)
                    .intoArray(dst, o + 16);
            ((FloatVector) i1.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).mul(d).sub(d8)
                    .intoArray(dst, o + 24);
        }
    }

    /**
     * {@link #dequant} from the {@link PackedWeights.Layout#Q4_0_PLANAR} copy: blocks {@code [first, first + blocks)}
     * of the row at {@code rowOff} (a row of {@code paddedBlocks} blocks), with bit-identical results, so prefill can
     * read the planar copy and the ggml-layout source need not stay resident. {@code first} must be even (a block
     * pair starts there). A pair's two blocks share 16 shorts: the low byte of short k is the first block's byte k,
     * the high byte the second's.
     */
    static void dequantPlanar(MemorySegment p, long rowOff, int paddedBlocks, int first, int blocks, float[] dst,
                              int dstOff) {
        long qs = rowOff + 2L * paddedBlocks;
        for (int i = 0; i < blocks; i += 2) {
            int b = first + i;
            long pair = qs + 16L * b;
            int o = dstOff + 32 * i;
            boolean second = i + 1 < blocks;
            var d0 = FloatVector.broadcast(F, BlockLayouts.f16(p, rowOff + 2L * b));
            var d08 = d0.mul(8f);
            var d1 = FloatVector.broadcast(F, second ? BlockLayouts.f16(p, rowOff + 2L * b + 2) : 0f);
            var d18 = d1.mul(8f);
            for (int half = 0; half < 2; half++) {
                var v = (IntVector) ShortVector.fromMemorySegment(S128, p, pair + 16L * half, LE)
                        .convertShape(VectorOperators.S2I, I, 0);
                int h = 8 * half;
                ((FloatVector) v.and(0xF).convert(VectorOperators.I2F, 0)).mul(d0).sub(d08)
                        .intoArray(dst, o + h);
                ((FloatVector) v.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).mul(d0)
                        .sub(d08).intoArray(dst, o + 16 + h);
                if (second) {
                    ((FloatVector) v.lanewise(VectorOperators.ASHR, 8).and(0xF).convert(VectorOperators.I2F, 0))
                            .mul(d1).sub(d18).intoArray(dst, o + 32 + h);
                    ((FloatVector) v.lanewise(VectorOperators.ASHR, 12).and(0xF).convert(VectorOperators.I2F, 0))
                            .mul(d1).sub(d18).intoArray(dst, o + 48 + h);
                }
            }
        }
    }

    /**
     * {@code y[t][r] = dot(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. Token
     * t's block sums are at {@code sums[t * 4 * (cols / 32)]}.
     */
    static void rows(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, MemorySegment sums,
                     int tokens, int cols, MemorySegment y, long yStride) {
        long sStride = 4L * (cols / 32);
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dot(w, r * rowBytes, x, t * xStride, sums, t * sStride, cols));
            }
        }
    }

    /**
     * {@code y[t][r] = dotQ8(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. Token
     * t's activations are at {@code ax[t * axStride]}, {@code dx[t * dxStride]}.
     */
    static void rowsQ8(MemorySegment w, long rowBytes, int from, int to, short[] ax, int axStride, float[] dx, int dxStride,
                       int tokens, int cols, MemorySegment y, long yStride, float[] ss) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ8(w, r * rowBytes, ax, t * axStride, dx, t * dxStride, cols / 32, ss));
            }
        }
    }

    /** {@code y[t][r] = dotPlanar(P[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsPlanar(MemorySegment p, int paddedBlocks, int from, int to, short[] ax, int axStride, float[] dx,
                           float[] cx, int dxStride, int tokens, MemorySegment y, long yStride, float[] ss) {
        long rowBytes = PackedWeights.q4PlanarRowBytes(paddedBlocks);
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r,
                        dotPlanar(p, r * rowBytes, paddedBlocks, ax, t * axStride, dx, t * dxStride, cx, ss));
            }
        }
    }
}
