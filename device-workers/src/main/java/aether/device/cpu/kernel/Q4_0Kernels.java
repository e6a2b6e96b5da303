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
 */
final class Q4_0Kernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Q4_0Kernels() {}

    /** Float path (llama3.java's Q4_0 vectorDot): nibbles unpacked in byte lanes, widened 8 at a time to floats. */
    static float dot(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        int blocks = cols / 32;
        int b = 0;
        for (; b + 1 < blocks; b += 2) {
            acc0 = block(w, wOff + (long) b * Q4_0_BYTES, x, xOff + b * 128L, acc0);
            acc1 = block(w, wOff + (long) (b + 1) * Q4_0_BYTES, x, xOff + (b + 1) * 128L, acc1);
        }
        if (b < blocks) {
            acc0 = block(w, wOff + (long) b * Q4_0_BYTES, x, xOff + b * 128L, acc0);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    private static FloatVector block(MemorySegment w, long blk, MemorySegment x, long xb, FloatVector acc) {
        var q = ByteVector.fromMemorySegment(B128, w, blk + Q4_0_QS, LE);
        var lo = q.and((byte) 0xF).sub((byte) 8);
        var hi = q.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
        var p = lo.castShape(F, 0).reinterpretAsFloats().mul(FloatVector.fromMemorySegment(F, x, xb, LE));
        p = lo.castShape(F, 1).reinterpretAsFloats().fma(FloatVector.fromMemorySegment(F, x, xb + 32, LE), p);
        p = hi.castShape(F, 0).reinterpretAsFloats().fma(FloatVector.fromMemorySegment(F, x, xb + 64, LE), p);
        p = hi.castShape(F, 1).reinterpretAsFloats().fma(FloatVector.fromMemorySegment(F, x, xb + 96, LE), p);
        return p.fma(FloatVector.broadcast(F, BlockLayouts.f16(w, blk)), acc);
    }

    /**
     * Int8 path against {@link Q8Activations}: nibbles and activation bytes widened to shorts, multiplied in 16-bit
     * lanes; |q4·q8| ≤ 8·127, so a whole block's 32 products summed pairwise stay far inside a short. One int
     * conversion and one FMA per block.
     */
    static float dotQ8(MemorySegment w, long wOff, MemorySegment xq, long xqOff, int cols) {
        int blocks = cols / 32;
        long qs = xqOff + Q8Activations.quantsOffset(cols);
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_0_BYTES;
            long a = qs + b * 32L;
            var q = ByteVector.fromMemorySegment(B128, w, blk + Q4_0_QS, LE);
            var lo = (ShortVector) q.and((byte) 0xF).sub((byte) 8).convertShape(VectorOperators.B2S, S, 0);
            var hi = (ShortVector) q.lanewise(VectorOperators.LSHR, 4).sub((byte) 8).convertShape(VectorOperators.B2S, S, 0);
            var x0 = (ShortVector) ByteVector.fromMemorySegment(B128, xq, a, LE).convertShape(VectorOperators.B2S, S, 0);
            var x1 = (ShortVector) ByteVector.fromMemorySegment(B128, xq, a + 16, LE).convertShape(VectorOperators.B2S, S, 0);
            var p = lo.mul(x0).add(hi.mul(x1));
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

    static void dequant(MemorySegment w, long wOff, int blocks, MemorySegment dst, long dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_0_BYTES;
            long o = dstOff + b * 128L;
            var d = FloatVector.broadcast(F, BlockLayouts.f16(w, blk));
            var q = ByteVector.fromMemorySegment(B128, w, blk + Q4_0_QS, LE);
            var lo = q.and((byte) 0xF).sub((byte) 8);
            var hi = q.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
            lo.castShape(F, 0).reinterpretAsFloats().mul(d).intoMemorySegment(dst, o, LE);
            lo.castShape(F, 1).reinterpretAsFloats().mul(d).intoMemorySegment(dst, o + 32, LE);
            hi.castShape(F, 0).reinterpretAsFloats().mul(d).intoMemorySegment(dst, o + 64, LE);
            hi.castShape(F, 1).reinterpretAsFloats().mul(d).intoMemorySegment(dst, o + 96, LE);
        }
    }
}
