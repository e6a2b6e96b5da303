package aether.runtime.quant;

import static aether.runtime.quant.KQuantMath.QK_K;
import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.KQuantMath.minK4;
import static aether.runtime.quant.LittleEndian.putU8;
import static aether.runtime.quant.KQuantMath.scaleK4;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * ggml's Q5_K: 256 elements as 8 sub-blocks of 32, each {@code x = d·sc·q - dmin·m} with 5-bit {@code q} (4 low bits
 * in {@code qs}, the high bit in {@code qh}) and 6-bit {@code sc}, {@code m}; 5.5 bits per weight. Stateless and
 * thread-safe. Dequantization uses the Vector API unless {@code -Daether.vector=false}; both paths are bit-identical.
 *
 * <p>{@link #quantize} follows llama.cpp's reference quantizer bit for bit and, like it, does not check that the
 * input is finite: NaN or infinite input gives meaningless blocks. Magnitudes past what the format's f16 scales
 * hold (about 1e6 for Q2_K, more for the others) overflow to infinite scales, also as in llama.cpp.
 */
public final class Q5_KCodec implements BlockCodec {

    // block_q5_K (ggml-common.h), 176 bytes:
    /** ggml_half d: super-block scale for the 6-bit scales. */
    static final int D_OFFSET = 0;
    /** ggml_half dmin: super-block scale for the 6-bit mins. */
    static final int DMIN_OFFSET = 2;
    /** uint8 scales[K_SCALE_SIZE = 12]: as Q4_K. */
    static final int SCALES_OFFSET = 4;
    /** uint8 qh[32]: bit {@code k} of byte {@code l} is the high bit of element {@code 32·k + l}. */
    static final int QH_OFFSET = 16;
    /** uint8 qs[128]: low 4 bits, packed as Q4_K's quants. */
    static final int QS_OFFSET = 48;
    static final int BLOCK_BYTES = 176;

    private final boolean vector;

    /** A codec that uses the Vector API when it is available and not disabled by {@code aether.vector=false}. */
    public Q5_KCodec() {
        this(Vectorization.ENABLED);
    }

    /** Forces the vector ({@code true}) or scalar path; tests compare the two. */
    Q5_KCodec(boolean vector) {
        this.vector = vector && KQuantVector.requireSupported();
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q5_K;
    }

    /** {@code dequantize_row_q5_K}: {@code y = (d·sc)·q - (dmin·m)}, each product rounded to float first. */
    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        int nb = count / QK_K;
        for (int i = 0; i < nb; i++) {
            long blk = srcOffset + (long) i * BLOCK_BYTES;
            if (vector) {
                KQuantVector.dequantizeQ5K(src, blk, dst, dstIndex + i * QK_K);
            } else {
                dequantizeBlock(src, blk, dst, dstIndex + i * QK_K);
            }
        }
    }

    static void dequantizeBlock(MemorySegment src, long blk, float[] dst, int y) {
        float d = f16(src, blk + D_OFFSET);
        float min = f16(src, blk + DMIN_OFFSET);
        long scales = blk + SCALES_OFFSET;
        long ql = blk + QS_OFFSET;
        long qh = blk + QH_OFFSET;
        int u1 = 1;
        int u2 = 2;
        for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            float d1 = d * scaleK4(src, scales, is);
            float m1 = min * minK4(src, scales, is);
            float d2 = d * scaleK4(src, scales, is + 1);
            float m2 = min * minK4(src, scales, is + 1);
            for (int l = 0; l < 32; ++l) {
                dst[y++] = d1 * ((u8(src, ql + l) & 0xF) + ((u8(src, qh + l) & u1) != 0 ? 16 : 0)) - m1;
            }
            for (int l = 0; l < 32; ++l) {
                dst[y++] = d2 * ((u8(src, ql + l) >> 4) + ((u8(src, qh + l) & u2) != 0 ? 16 : 0)) - m2;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /** {@code quantize_row_q5_K_ref}: as Q4_K with 5-bit levels and a finer scale search. */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(type(), count);
        Q4_KCodec.quantizeKx(src, srcIndex, count, dst, dstOffset, 31, -0.5f, 0.1f, 15, BLOCK_BYTES);
    }

    /**
     * Splits 5-bit levels into {@code qs} nibbles and {@code qh} bits as {@code quantize_row_q5_K_ref} does: group g
     * (64 elements) puts the high bits of its elements j and j+32 at bits 2g and 2g+1 of {@code qh[j]}.
     */
    static void packQuants(byte[] L, MemorySegment dst, long blk) {
        for (int j = 0; j < 32; ++j) {
            int h = 0;
            for (int g = 0; g < 4; g++) {
                int l1 = L[64 * g + j];
                if (l1 > 15) {
                    l1 -= 16;
                    h |= 1 << (2 * g);
                }
                int l2 = L[64 * g + j + 32];
                if (l2 > 15) {
                    l2 -= 16;
                    h |= 2 << (2 * g);
                }
                putU8(dst, blk + QS_OFFSET + 32 * g + j, l1 | (l2 << 4));
            }
            putU8(dst, blk + QH_OFFSET + j, h);
        }
    }
}
