package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q4_0_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q4_0_QS;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
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
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

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
        return acc.reduceLanes(VectorOperators.ADD);
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
     * Int8 path against {@link Q8Activations}: nibbles and activation bytes widened to 8 short lanes at a time,
     * multiplied in 16-bit lanes; |q4·q8| ≤ 8·128, so the four products each lane sums (≤ 4096) stay far inside a
     * short. One conversion to float and one FMA with d_w·d_x per block; the block sum is exact, like ggml's isum.
     */
    static float dotQ8(MemorySegment w, long wOff, MemorySegment xq, long xqOff, int cols) {
        int blocks = cols / 32;
        long qs = xqOff + Q8Activations.quantsOffset(cols);
        var acc = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_0_BYTES;
            long a = qs + b * 32L;
            var q0 = (ShortVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_0_QS, LE).convertShape(VectorOperators.B2S, S128, 0);
            var q1 = (ShortVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_0_QS + 8, LE).convertShape(VectorOperators.B2S, S128, 0);
            var x0 = (ShortVector) ByteVector.fromMemorySegment(B64, xq, a, LE).convertShape(VectorOperators.B2S, S128, 0);
            var x1 = (ShortVector) ByteVector.fromMemorySegment(B64, xq, a + 8, LE).convertShape(VectorOperators.B2S, S128, 0);
            var x2 = (ShortVector) ByteVector.fromMemorySegment(B64, xq, a + 16, LE).convertShape(VectorOperators.B2S, S128, 0);
            var x3 = (ShortVector) ByteVector.fromMemorySegment(B64, xq, a + 24, LE).convertShape(VectorOperators.B2S, S128, 0);
            var p = q0.and((short) 0xF).sub((short) 8).mul(x0);
            p = p.add(q1.and((short) 0xF).sub((short) 8).mul(x1));
            p = p.add(q0.lanewise(VectorOperators.ASHR, 4).and((short) 0xF).sub((short) 8).mul(x2));
            p = p.add(q1.lanewise(VectorOperators.ASHR, 4).and((short) 0xF).sub((short) 8).mul(x3));
            var f = (FloatVector) p.convertShape(VectorOperators.S2F, F, 0);
            float scale = BlockLayouts.f16(w, blk) * xq.get(BlockLayouts.F32, xqOff + 4L * b);
            acc = f.fma(FloatVector.broadcast(F, scale), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /** Dequantizes {@code blocks} blocks at {@code w[wOff]} to f32 at {@code dst[dstOff]}. */
    static void dequant(MemorySegment w, long wOff, int blocks, MemorySegment dst, long dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_0_BYTES;
            long o = dstOff + b * 128L;
            var d = FloatVector.broadcast(F, BlockLayouts.f16(w, blk));
            var d8 = d.mul(8f);
            var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_0_QS, LE).convertShape(VectorOperators.B2I, I, 0);
            var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_0_QS + 8, LE).convertShape(VectorOperators.B2I, I, 0);
            ((FloatVector) i0.and(0xF).convert(VectorOperators.I2F, 0)).mul(d).sub(d8).intoMemorySegment(dst, o, LE);
            ((FloatVector) i1.and(0xF).convert(VectorOperators.I2F, 0)).mul(d).sub(d8).intoMemorySegment(dst, o + 32, LE);
            ((FloatVector) i0.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).mul(d).sub(d8)
                    .intoMemorySegment(dst, o + 64, LE);
            ((FloatVector) i1.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).mul(d).sub(d8)
                    .intoMemorySegment(dst, o + 96, LE);
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

    /** {@code y[t][r] = dotQ8(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ8(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ8(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }
}
