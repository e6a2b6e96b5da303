package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q4_K_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q4_K_DMIN;
import static aether.device.cpu.kernel.BlockLayouts.Q4_K_QS;
import static aether.device.cpu.kernel.BlockLayouts.Q4_K_SCALES;
import static aether.device.cpu.kernel.BlockLayouts.Q6_K_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q6_K_D;
import static aether.device.cpu.kernel.BlockLayouts.Q6_K_QH;
import static aether.device.cpu.kernel.BlockLayouts.Q6_K_SCALES;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector float-path kernels for the K-quants Q4_K and Q6_K (256-element super-blocks). Scales and mins are decoded
 * with scalar code once per sub-block; the quants are zero-extended 8 at a time to int lanes (the only conversion
 * C2 intrinsifies well, see {@link Q4_0Kernels}) and cut there. Q4_K's mins are applied through the sum of each
 * sub-block's activations, once per 32 elements.
 */
final class KQuantKernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private KQuantKernels() {}

    static float dotQ4_K(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc = FloatVector.zero(F);
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * Q4_K_BYTES;
            float d = BlockLayouts.f16(w, blk);
            float dmin = BlockLayouts.f16(w, blk + Q4_K_DMIN);
            long sc = blk + Q4_K_SCALES;
            for (int g = 0; g < 4; g++) {
                long q = blk + Q4_K_QS + 32L * g;
                long xl = xOff + (b * 256L + 64L * g) * Float.BYTES;   // sub-block 2g: low nibbles
                long xh = xl + 32 * Float.BYTES;                       // sub-block 2g+1: high nibbles
                var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, q, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, q + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                var i2 = (IntVector) ByteVector.fromMemorySegment(B64, w, q + 16, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                var i3 = (IntVector) ByteVector.fromMemorySegment(B64, w, q + 24, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                var l0 = FloatVector.fromMemorySegment(F, x, xl, LE);
                var l1 = FloatVector.fromMemorySegment(F, x, xl + 32, LE);
                var l2 = FloatVector.fromMemorySegment(F, x, xl + 64, LE);
                var l3 = FloatVector.fromMemorySegment(F, x, xl + 96, LE);
                var pl = ((FloatVector) i0.and(0xF).convert(VectorOperators.I2F, 0)).mul(l0);
                pl = ((FloatVector) i1.and(0xF).convert(VectorOperators.I2F, 0)).fma(l1, pl);
                pl = ((FloatVector) i2.and(0xF).convert(VectorOperators.I2F, 0)).fma(l2, pl);
                pl = ((FloatVector) i3.and(0xF).convert(VectorOperators.I2F, 0)).fma(l3, pl);
                var sl = l0.add(l1).add(l2.add(l3));
                var h0 = FloatVector.fromMemorySegment(F, x, xh, LE);
                var h1 = FloatVector.fromMemorySegment(F, x, xh + 32, LE);
                var h2 = FloatVector.fromMemorySegment(F, x, xh + 64, LE);
                var h3 = FloatVector.fromMemorySegment(F, x, xh + 96, LE);
                var ph = ((FloatVector) i0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).mul(h0);
                ph = ((FloatVector) i1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(h1, ph);
                ph = ((FloatVector) i2.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(h2, ph);
                ph = ((FloatVector) i3.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(h3, ph);
                var sh = h0.add(h1).add(h2.add(h3));
                acc = pl.fma(FloatVector.broadcast(F, d * BlockLayouts.q4kScale(w, sc, 2 * g)), acc);
                acc = sl.fma(FloatVector.broadcast(F, -dmin * BlockLayouts.q4kMin(w, sc, 2 * g)), acc);
                acc = ph.fma(FloatVector.broadcast(F, d * BlockLayouts.q4kScale(w, sc, 2 * g + 1)), acc);
                acc = sh.fma(FloatVector.broadcast(F, -dmin * BlockLayouts.q4kMin(w, sc, 2 * g + 1)), acc);
            }
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    static void dequantQ4_K(MemorySegment w, long wOff, int blocks, MemorySegment dst, long dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_K_BYTES;
            float d = BlockLayouts.f16(w, blk);
            float dmin = BlockLayouts.f16(w, blk + Q4_K_DMIN);
            long sc = blk + Q4_K_SCALES;
            for (int g = 0; g < 4; g++) {
                long q = blk + Q4_K_QS + 32L * g;
                long o = dstOff + (b * 256L + 64L * g) * Float.BYTES;
                var dl = FloatVector.broadcast(F, d * BlockLayouts.q4kScale(w, sc, 2 * g));
                var ml = FloatVector.broadcast(F, -dmin * BlockLayouts.q4kMin(w, sc, 2 * g));
                var dh = FloatVector.broadcast(F, d * BlockLayouts.q4kScale(w, sc, 2 * g + 1));
                var mh = FloatVector.broadcast(F, -dmin * BlockLayouts.q4kMin(w, sc, 2 * g + 1));
                for (int k = 0; k < 4; k++) {
                    var i = (IntVector) ByteVector.fromMemorySegment(B64, w, q + 8 * k, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    ((FloatVector) i.and(0xF).convert(VectorOperators.I2F, 0)).fma(dl, ml).intoMemorySegment(dst, o + 32L * k, LE);
                    ((FloatVector) i.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(dh, mh)
                            .intoMemorySegment(dst, o + 128 + 32L * k, LE);
                }
            }
        }
    }

    static float dotQ6_K(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc = FloatVector.zero(F);
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * Q6_K_BYTES;
            float d = BlockLayouts.f16(w, blk + Q6_K_D);
            for (int h = 0; h < 2; h++) {
                long ql = blk + 64L * h;
                long qh = blk + Q6_K_QH + 32L * h;
                long sc = blk + Q6_K_SCALES + 8L * h;
                long xb = xOff + (b * 256L + 128L * h) * Float.BYTES;
                for (int g = 0; g < 4; g++) {                 // l = 8g .. 8g+7; scale index is = g / 2
                    int l = 8 * g;
                    var lo = (IntVector) ByteVector.fromMemorySegment(B64, w, ql + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    var hi = (IntVector) ByteVector.fromMemorySegment(B64, w, ql + l + 32, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    var hb = (IntVector) ByteVector.fromMemorySegment(B64, w, qh + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    // bits 2k..2k+1 of qh become bits 4-5 of q: shift left 4, left 2, none, right 2, then mask 0x30
                    var q1 = lo.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 4).and(0x30));
                    var q2 = hi.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 2).and(0x30));
                    var q3 = lo.lanewise(VectorOperators.LSHR, 4).or(hb.and(0x30));
                    var q4 = hi.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 2).and(0x30));
                    int is = g >> 1;
                    long xl = xb + 4L * l;
                    acc = ((FloatVector) q1.sub(32).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromMemorySegment(F, x, xl, LE))
                            .fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is)), acc);
                    acc = ((FloatVector) q2.sub(32).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromMemorySegment(F, x, xl + 128, LE))
                            .fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2)), acc);
                    acc = ((FloatVector) q3.sub(32).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromMemorySegment(F, x, xl + 256, LE))
                            .fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4)), acc);
                    acc = ((FloatVector) q4.sub(32).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromMemorySegment(F, x, xl + 384, LE))
                            .fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6)), acc);
                }
            }
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    static void dequantQ6_K(MemorySegment w, long wOff, int blocks, MemorySegment dst, long dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q6_K_BYTES;
            float d = BlockLayouts.f16(w, blk + Q6_K_D);
            for (int h = 0; h < 2; h++) {
                long ql = blk + 64L * h;
                long qh = blk + Q6_K_QH + 32L * h;
                long sc = blk + Q6_K_SCALES + 8L * h;
                long ob = dstOff + (b * 256L + 128L * h) * Float.BYTES;
                for (int g = 0; g < 4; g++) {
                    int l = 8 * g;
                    var lo = (IntVector) ByteVector.fromMemorySegment(B64, w, ql + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    var hi = (IntVector) ByteVector.fromMemorySegment(B64, w, ql + l + 32, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    var hb = (IntVector) ByteVector.fromMemorySegment(B64, w, qh + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    int is = g >> 1;
                    long o = ob + 4L * l;
                    ((FloatVector) lo.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 4).and(0x30)).sub(32).convert(VectorOperators.I2F, 0))
                            .mul(d * w.get(ValueLayout.JAVA_BYTE, sc + is)).intoMemorySegment(dst, o, LE);
                    ((FloatVector) hi.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 2).and(0x30)).sub(32).convert(VectorOperators.I2F, 0))
                            .mul(d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2)).intoMemorySegment(dst, o + 128, LE);
                    ((FloatVector) lo.lanewise(VectorOperators.LSHR, 4).or(hb.and(0x30)).sub(32).convert(VectorOperators.I2F, 0))
                            .mul(d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4)).intoMemorySegment(dst, o + 256, LE);
                    ((FloatVector) hi.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 2).and(0x30)).sub(32)
                            .convert(VectorOperators.I2F, 0)).mul(d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6)).intoMemorySegment(dst, o + 384, LE);
                }
            }
        }
    }

    /** {@code y[t][r] = dotQ4_K(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ4_K(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ4_K(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }

    /** {@code y[t][r] = dotQ6_K(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ6_K(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ6_K(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }
}
