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
 * it passes is boxed on the heap (a 5× slowdown seen with a 2-block unroll), so bodies are written out inline.
 */
final class Q4_0Kernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Q4_0Kernels() {}

    /** Float path (after llama3.java's Q4_0 vectorDot): nibbles cut in int lanes, converted, FMA'd with x. */
    static float dot(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc = FloatVector.zero(F);
        int blocks = cols / 32;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_0_BYTES;
            long xb = xOff + b * 128L;
            var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_0_QS, LE).convertShape(VectorOperators.B2I, I, 0);
            var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_0_QS + 8, LE).convertShape(VectorOperators.B2I, I, 0);
            var f0 = ((FloatVector) i0.and(0xF).convert(VectorOperators.I2F, 0)).sub(8f);
            var f1 = ((FloatVector) i1.and(0xF).convert(VectorOperators.I2F, 0)).sub(8f);
            var f2 = ((FloatVector) i0.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).sub(8f);
            var f3 = ((FloatVector) i1.lanewise(VectorOperators.ASHR, 4).and(0xF).convert(VectorOperators.I2F, 0)).sub(8f);
            var p = f0.mul(FloatVector.fromMemorySegment(F, x, xb, LE));
            p = f1.fma(FloatVector.fromMemorySegment(F, x, xb + 32, LE), p);
            p = f2.fma(FloatVector.fromMemorySegment(F, x, xb + 64, LE), p);
            p = f3.fma(FloatVector.fromMemorySegment(F, x, xb + 96, LE), p);
            acc = p.fma(FloatVector.broadcast(F, BlockLayouts.f16(w, blk)), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
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

    /** {@code y[t][r] = dot(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rows(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dot(w, r * rowBytes, x, t * xStride, cols));
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
