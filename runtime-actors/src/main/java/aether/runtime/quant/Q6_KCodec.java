package aether.runtime.quant;

import static aether.runtime.quant.KQuantMath.GROUP_MAX_EPS;
import static aether.runtime.quant.KQuantMath.QK_K;
import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.KQuantMath.makeQxQuants;
import static aether.runtime.quant.CFloat.nearestInt;
import static aether.runtime.quant.LittleEndian.putF16;
import static aether.runtime.quant.LittleEndian.putU8;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * ggml's Q6_K: 256 elements as 16 sub-blocks of 16, each {@code x = d·sc·(q-32)} with 6-bit {@code q} (4 low bits in
 * {@code ql}, 2 high bits in {@code qh}) and a signed 8-bit {@code sc}; 6.5625 bits per weight. Stateless and
 * thread-safe. Dequantization uses the Vector API unless {@code -Daether.vector=false}; both paths are bit-identical.
 *
 * <p>{@link #quantize} follows llama.cpp's reference quantizer bit for bit and, like it, does not check that the
 * input is finite: NaN or infinite input gives meaningless blocks. Magnitudes past what the format's f16 scales
 * hold (about 1e6 for Q2_K, more for the others) overflow to infinite scales, also as in llama.cpp.
 */
public final class Q6_KCodec implements BlockCodec {

    // block_q6_K (ggml-common.h), 210 bytes:
    /**
     * uint8 ql[128]: low 4 bits. In each 128-element half h, byte {@code 64·h + l} holds elements {@code l} (low
     * nibble) and {@code l + 64} (high), byte {@code 64·h + 32 + l} holds {@code l + 32} and {@code l + 96}.
     */
    static final int QL_OFFSET = 0;
    /** uint8 qh[64]: high 2 bits; byte {@code 32·h + l} holds elements l, l+32, l+64, l+96 at bits 0, 2, 4, 6. */
    static final int QH_OFFSET = 128;
    /** int8 scales[16]: one signed scale per 16 elements. */
    static final int SCALES_OFFSET = 192;
    /** ggml_half d: super-block scale. */
    static final int D_OFFSET = 208;
    static final int BLOCK_BYTES = 210;

    private final boolean vector;

    /** A codec that uses the Vector API when it is available and not disabled by {@code aether.vector=false}. */
    public Q6_KCodec() {
        this(Vectorization.ENABLED);
    }

    /** Forces the vector ({@code true}) or scalar path; tests compare the two. */
    Q6_KCodec(boolean vector) {
        this.vector = vector && KQuantVector.requireSupported();
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q6_K;
    }

    /** {@code dequantize_row_q6_K}: {@code y = (d·sc)·(q-32)}, the product {@code d·sc} rounded to float first. */
    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        int nb = count / QK_K;
        for (int i = 0; i < nb; i++) {
            long blk = srcOffset + (long) i * BLOCK_BYTES;
            if (vector) {
                KQuantVector.dequantizeQ6K(src, blk, dst, dstIndex + i * QK_K);
            } else {
                dequantizeBlock(src, blk, dst, dstIndex + i * QK_K);
            }
        }
    }

    static void dequantizeBlock(MemorySegment src, long blk, float[] dst, int y) {
        float d = f16(src, blk + D_OFFSET);
        long ql = blk + QL_OFFSET;
        long qh = blk + QH_OFFSET;
        long sc = blk + SCALES_OFFSET;
        for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                int is = l / 16;
                int h = u8(src, qh + l);
                int q1 = ((u8(src, ql + l) & 0xF) | ((h & 3) << 4)) - 32;
                int q2 = ((u8(src, ql + l + 32) & 0xF) | (((h >> 2) & 3) << 4)) - 32;
                int q3 = ((u8(src, ql + l) >> 4) | (((h >> 4) & 3) << 4)) - 32;
                int q4 = ((u8(src, ql + l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32;
                dst[y + l] = d * scale(src, sc, is) * q1;
                dst[y + l + 32] = d * scale(src, sc, is + 2) * q2;
                dst[y + l + 64] = d * scale(src, sc, is + 4) * q3;
                dst[y + l + 96] = d * scale(src, sc, is + 6) * q4;
            }
        }
    }

    private static int scale(MemorySegment src, long sc, int is) {
        return src.get(ValueLayout.JAVA_BYTE, sc + is);
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /** {@code quantize_row_q6_K_ref}: x²-weighted symmetric scale search per sub-block, then 8-bit scales. */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(type(), count);
        int nb = count / QK_K;
        byte[] L = new byte[QK_K];
        float[] scales = new float[QK_K / 16];
        byte[] sc = new byte[QK_K / 16];
        int x = srcIndex;
        for (int i = 0; i < nb; i++, x += QK_K) {
            long blk = dstOffset + (long) i * BLOCK_BYTES;
            float maxScale = 0;
            float maxAbsScale = 0;
            for (int ib = 0; ib < QK_K / 16; ++ib) {
                float scale = makeQxQuants(16, 32, src, x + 16 * ib, L, 16 * ib, 1);
                scales[ib] = scale;
                float absScale = Math.abs(scale);
                if (absScale > maxAbsScale) {
                    maxAbsScale = absScale;
                    maxScale = scale;
                }
            }
            if (maxAbsScale < GROUP_MAX_EPS) {
                dst.asSlice(blk, BLOCK_BYTES).fill((byte) 0);
                continue;
            }
            float iscale = -128.f / maxScale;
            float d = putF16(dst, blk + D_OFFSET, 1 / iscale);
            for (int ib = 0; ib < QK_K / 16; ++ib) {
                sc[ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib])); // stored into an int8_t
                putU8(dst, blk + SCALES_OFFSET + ib, sc[ib]);
            }
            for (int j = 0; j < QK_K / 16; ++j) {
                float dj = d * sc[j];
                if (dj == 0) {
                    continue;
                }
                for (int ii = 0; ii < 16; ++ii) {
                    int l = nearestInt(src[x + 16 * j + ii] / dj);
                    L[16 * j + ii] = (byte) (Math.max(-32, Math.min(31, l)) + 32);
                }
            }
            long ql = blk + QL_OFFSET;
            long qh = blk + QH_OFFSET;
            for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
                for (int l = 0; l < 32; ++l) {
                    int q1 = L[j + l] & 0xF;
                    int q2 = L[j + l + 32] & 0xF;
                    int q3 = L[j + l + 64] & 0xF;
                    int q4 = L[j + l + 96] & 0xF;
                    putU8(dst, ql + l, q1 | (q3 << 4));
                    putU8(dst, ql + l + 32, q2 | (q4 << 4));
                    putU8(dst, qh + l, (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2)
                            | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
                }
            }
        }
    }
}
