package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.KQuantMath.minK4;
import static aether.runtime.quant.KQuantMath.scaleK4;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API dequantizers for Q4_K, Q5_K and Q6_K blocks: 8 quants at a time are unpacked in byte lanes, widened to
 * 8 float lanes and scaled. Each lane computes exactly the scalar expression ({@code (d·sc)·q - dmin·m}, separate
 * multiply and subtract, no FMA), so the results are bit-identical to the scalar reference in the codecs.
 *
 * <p>Only this class touches {@code jdk.incubator.vector}; it is loaded only when {@link Vectorization#ENABLED}
 * found the module, or when a test forces the vector path.
 *
 * <p>Loads and widenings are written out in place rather than in helpers: a vector passed to or returned from a
 * method C2 does not inline (one it compiled on its own first, say) is boxed, and these run for every embedding row
 * a decode step looks up.
 */
final class KQuantVector {

    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** True where 256-bit float vectors are native; elsewhere the species would be emulated, slower than scalar. */
    static final boolean SUPPORTED = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 256;

    private KQuantVector() {}

    static boolean requireSupported() {
        if (!SUPPORTED) {
            throw new IllegalStateException("256-bit Vector API species are not native on this CPU (preferred: "
                    + FloatVector.SPECIES_PREFERRED + "); use the scalar path (-Daether.vector=false)");
        }
        return true;
    }

    static void dequantizeQ4K(MemorySegment src, long blk, float[] dst, int y) {
        float d = f16(src, blk + Q4_KCodec.D_OFFSET);
        float min = f16(src, blk + Q4_KCodec.DMIN_OFFSET);
        long scales = blk + Q4_KCodec.SCALES_OFFSET;
        long q = blk + Q4_KCodec.QS_OFFSET;
        for (int is = 0; is < 8; is += 2, q += 32, y += 64) {
            float d1 = d * scaleK4(src, scales, is);
            float m1 = min * minK4(src, scales, is);
            float d2 = d * scaleK4(src, scales, is + 1);
            float m2 = min * minK4(src, scales, is + 1);
            for (int l = 0; l < 32; l += 8) {
                ByteVector b = ByteVector.fromMemorySegment(B64, src, q + l, LE);
                ((FloatVector) b.and((byte) 0x0F).castShape(F256, 0)).mul(d1).sub(m1).intoArray(dst, y + l);
                ((FloatVector) b.lanewise(VectorOperators.LSHR, 4).castShape(F256, 0)).mul(d2).sub(m2)
                        .intoArray(dst, y + 32 + l);
            }
        }
    }

    static void dequantizeQ5K(MemorySegment src, long blk, float[] dst, int y) {
        float d = f16(src, blk + Q5_KCodec.D_OFFSET);
        float min = f16(src, blk + Q5_KCodec.DMIN_OFFSET);
        long scales = blk + Q5_KCodec.SCALES_OFFSET;
        long ql = blk + Q5_KCodec.QS_OFFSET;
        long qh = blk + Q5_KCodec.QH_OFFSET;
        for (int is = 0; is < 8; is += 2, ql += 32, y += 64) {
            float d1 = d * scaleK4(src, scales, is);
            float m1 = min * minK4(src, scales, is);
            float d2 = d * scaleK4(src, scales, is + 1);
            float m2 = min * minK4(src, scales, is + 1);
            for (int l = 0; l < 32; l += 8) {
                ByteVector b = ByteVector.fromMemorySegment(B64, src, ql + l, LE);
                ByteVector h = ByteVector.fromMemorySegment(B64, src, qh + l, LE);
                // high bit of sub-block is is bit `is` of qh, of sub-block is+1 bit is+1; it adds 16 (= OR 0x10)
                ByteVector lo = b.and((byte) 0x0F)
                        .or(h.lanewise(VectorOperators.LSHR, is).and((byte) 1).lanewise(VectorOperators.LSHL, 4));
                ByteVector hi = b.lanewise(VectorOperators.LSHR, 4)
                        .or(h.lanewise(VectorOperators.LSHR, is + 1).and((byte) 1).lanewise(VectorOperators.LSHL, 4));
                ((FloatVector) lo.castShape(F256, 0)).mul(d1).sub(m1).intoArray(dst, y + l);
                ((FloatVector) hi.castShape(F256, 0)).mul(d2).sub(m2).intoArray(dst, y + 32 + l);
            }
        }
    }

    /**
     * Q6_K, one 8-lane group per inner iteration: output quarter k (elements 32k..32k+31 of a 128-half) takes its low
     * nibbles from {@code ql[32·(k&1) + l]} (low nibble for k < 2, high for k ≥ 2) and its high bits from bits 2k of
     * {@code qh[l]}. The quarters are a loop, not four unrolled chains: unrolled, the method exceeded C2's inlining
     * node budget ({@code NodeCountInliningCutoff}) and the last chain's vectors were boxed (≈130 KB/op of garbage).
     */
    static void dequantizeQ6K(MemorySegment src, long blk, float[] dst, int y) {
        float d = f16(src, blk + Q6_KCodec.D_OFFSET);
        long ql = blk + Q6_KCodec.QL_OFFSET;
        long qh = blk + Q6_KCodec.QH_OFFSET;
        long sc = blk + Q6_KCodec.SCALES_OFFSET;
        for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l += 8) {
                ByteVector h = ByteVector.fromMemorySegment(B64, src, qh + l, LE);
                for (int k = 0; k < 4; k++) {
                    // (d·sc) is rounded to float before the multiply by q, as in the C expression d * sc[is] * q
                    float ds = d * src.get(ValueLayout.JAVA_BYTE, sc + l / 16 + 2 * k);
                    ByteVector q = ByteVector.fromMemorySegment(B64, src, ql + 32 * (k & 1) + l, LE)
                            .lanewise(VectorOperators.LSHR, 4 * (k >> 1)).and((byte) 0x0F)
                            .or(h.lanewise(VectorOperators.LSHR, 2 * k).and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                    ((FloatVector) q.sub((byte) 32).castShape(F256, 0)).mul(ds).intoArray(dst, y + 32 * k + l);
                }
            }
        }
    }
}
