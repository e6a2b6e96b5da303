package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q8_0_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q8_0_QS;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Vector kernels for Q8_0 weights (block: f16 d, 32 int8; value = d·q). */
final class Q8_0Kernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Q8_0Kernels() {}

    /** Float path: each group of 8 int8 widened straight to 8 floats (vpmovsxbd + vcvtdq2ps) and FMA'd with x. */
    static float dot(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        int blocks = cols / 32;
        int b = 0;
        for (; b + 1 < blocks; b += 2) {
            acc0 = block(w, wOff + (long) b * Q8_0_BYTES, x, xOff + b * 128L, acc0);
            acc1 = block(w, wOff + (long) (b + 1) * Q8_0_BYTES, x, xOff + (b + 1) * 128L, acc1);
        }
        if (b < blocks) {
            acc0 = block(w, wOff + (long) b * Q8_0_BYTES, x, xOff + b * 128L, acc0);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    private static FloatVector block(MemorySegment w, long blk, MemorySegment x, long xb, FloatVector acc) {
        long q = blk + Q8_0_QS;
        var p = ByteVector.fromMemorySegment(B64, w, q, LE).castShape(F, 0).reinterpretAsFloats()
                .mul(FloatVector.fromMemorySegment(F, x, xb, LE));
        p = ByteVector.fromMemorySegment(B64, w, q + 8, LE).castShape(F, 0).reinterpretAsFloats()
                .fma(FloatVector.fromMemorySegment(F, x, xb + 32, LE), p);
        p = ByteVector.fromMemorySegment(B64, w, q + 16, LE).castShape(F, 0).reinterpretAsFloats()
                .fma(FloatVector.fromMemorySegment(F, x, xb + 64, LE), p);
        p = ByteVector.fromMemorySegment(B64, w, q + 24, LE).castShape(F, 0).reinterpretAsFloats()
                .fma(FloatVector.fromMemorySegment(F, x, xb + 96, LE), p);
        return p.fma(FloatVector.broadcast(F, BlockLayouts.f16(w, blk)), acc);
    }

    /**
     * Int8 path against {@link Q8Activations}: 16 int8 pairs widened to shorts (vpmovsxbw), multiplied in 16-bit lanes
     * (|q·q| ≤ 128·127 and the sum of two ≤ 32512 still fits a short), the pair sum widened to ints, converted once
     * per block and FMA'd with d_w·d_x. Exact integer block sums, like ggml's {@code isum}.
     */
    static float dotQ8(MemorySegment w, long wOff, MemorySegment xq, long xqOff, int cols) {
        int blocks = cols / 32;
        long qs = xqOff + Q8Activations.quantsOffset(cols);
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q8_0_BYTES;
            long a = qs + b * 32L;
            var w0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, blk + Q8_0_QS, LE).convertShape(VectorOperators.B2S, S, 0);
            var w1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, blk + Q8_0_QS + 16, LE).convertShape(VectorOperators.B2S, S, 0);
            var x0 = (ShortVector) ByteVector.fromMemorySegment(B128, xq, a, LE).convertShape(VectorOperators.B2S, S, 0);
            var x1 = (ShortVector) ByteVector.fromMemorySegment(B128, xq, a + 16, LE).convertShape(VectorOperators.B2S, S, 0);
            var p = w0.mul(x0).add(w1.mul(x1));
            var i = ((IntVector) p.convertShape(VectorOperators.S2I, I, 0)).add((IntVector) p.convertShape(VectorOperators.S2I, I, 1));
            float scale = BlockLayouts.f16(w, blk) * xq.get(BlockLayouts.F32, xqOff + 4L * b);
            var f = (FloatVector) i.convert(VectorOperators.I2F, 0);
            if ((b & 1) == 0) {
                acc0 = f.fma(FloatVector.broadcast(F, scale), acc0);
            } else {
                acc1 = f.fma(FloatVector.broadcast(F, scale), acc1);
            }
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    /** Dequantizes {@code blocks} blocks at {@code w[wOff]} to floats at {@code dst[dstOff]}. */
    static void dequant(MemorySegment w, long wOff, int blocks, MemorySegment dst, long dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q8_0_BYTES;
            long o = dstOff + b * 128L;
            var d = FloatVector.broadcast(F, BlockLayouts.f16(w, blk));
            for (int k = 0; k < 4; k++) {
                ByteVector.fromMemorySegment(B64, w, blk + Q8_0_QS + 8 * k, LE).castShape(F, 0).reinterpretAsFloats()
                        .mul(d).intoMemorySegment(dst, o + 32L * k, LE);
            }
        }
    }
}
