package aether.runtime.quant;

import static aether.runtime.quant.KQuantMath.QK_K;
import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.KQuantMath.makeQkx2Quants;
import static aether.runtime.quant.CFloat.nearestInt;
import static aether.runtime.quant.LittleEndian.putF16;
import static aether.runtime.quant.LittleEndian.putU8;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * ggml's Q2_K: 256 elements as 16 sub-blocks of 16, each {@code x = d·sc·q - dmin·m} with 2-bit {@code q} and 4-bit
 * {@code sc}, {@code m}; 2.625 bits per weight. Stateless and thread-safe.
 *
 * <p>{@link #quantize} follows llama.cpp's reference quantizer bit for bit and, like it, does not check that the
 * input is finite: NaN or infinite input gives meaningless blocks. Magnitudes past what the format's f16 scales
 * hold (about 1e6 for Q2_K, more for the others) overflow to infinite scales, also as in llama.cpp.
 */
public final class Q2_KCodec implements BlockCodec {

    // block_q2_K (ggml-common.h), 84 bytes:
    /** uint8 scales[16]: low nibble = scale, high nibble = min of each 16-element sub-block. */
    static final int SCALES_OFFSET = 0;
    /** uint8 qs[64]: 2-bit quants; byte {@code 32·h + l} holds elements {@code 128·h + l + 32·k} at bits 2k. */
    static final int QS_OFFSET = 16;
    /** ggml_half d: super-block scale for the 4-bit scales. */
    static final int D_OFFSET = 80;
    /** ggml_half dmin: super-block scale for the 4-bit mins. */
    static final int DMIN_OFFSET = 82;
    static final int BLOCK_BYTES = 84;

    public Q2_KCodec() {}

    @Override
    public GgmlType type() {
        return GgmlType.Q2_K;
    }

    /** {@code dequantize_row_q2_K}. */
    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        int nb = count / QK_K;
        int y = dstIndex;
        for (int i = 0; i < nb; i++) {
            long blk = srcOffset + (long) i * BLOCK_BYTES;
            float d = f16(src, blk + D_OFFSET);
            float min = f16(src, blk + DMIN_OFFSET);
            long q = blk + QS_OFFSET;
            int is = 0;
            for (int n = 0; n < QK_K; n += 128) {
                for (int shift = 0; shift < 8; shift += 2) {
                    int sc = u8(src, blk + SCALES_OFFSET + is++);
                    float dl = d * (sc & 0xF);
                    float ml = min * (sc >> 4);
                    for (int l = 0; l < 16; ++l) {
                        dst[y++] = dl * ((u8(src, q + l) >> shift) & 3) - ml;
                    }
                    sc = u8(src, blk + SCALES_OFFSET + is++);
                    dl = d * (sc & 0xF);
                    ml = min * (sc >> 4);
                    for (int l = 0; l < 16; ++l) {
                        dst[y++] = dl * ((u8(src, q + l + 16) >> shift) & 3) - ml;
                    }
                }
                q += 32;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /** {@code quantize_row_q2_K_ref}: per sub-block a MAD-weighted (|x|) scale/min search, then 4-bit scales. */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(type(), count);
        int nb = count / QK_K;
        byte[] L = new byte[QK_K];
        byte[] laux = new byte[16];
        float[] weights = new float[16];
        float[] mins = new float[QK_K / 16];
        float[] scales = new float[QK_K / 16];
        int[] sc = new int[QK_K / 16];
        final float q4scale = 15.f;
        int x = srcIndex;
        for (int i = 0; i < nb; i++, x += QK_K) {
            long blk = dstOffset + (long) i * BLOCK_BYTES;
            float maxScale = 0;
            float maxMin = 0;
            for (int j = 0; j < QK_K / 16; ++j) {
                for (int l = 0; l < 16; ++l) {
                    weights[l] = Math.abs(src[x + 16 * j + l]);
                }
                scales[j] = makeQkx2Quants(16, 3, src, x + 16 * j, weights, L, 16 * j, mins, j, laux,
                        -0.5f, 0.1f, 15, true);
                if (scales[j] > maxScale) {
                    maxScale = scales[j];
                }
                if (mins[j] > maxMin) {
                    maxMin = mins[j];
                }
            }
            float d;
            if (maxScale > 0) {
                float iscale = q4scale / maxScale;
                for (int j = 0; j < QK_K / 16; ++j) {
                    sc[j] = nearestInt(iscale * scales[j]) & 0xFF; // stored into a uint8_t
                }
                d = putF16(dst, blk + D_OFFSET, maxScale / q4scale);
            } else {
                for (int j = 0; j < QK_K / 16; ++j) {
                    sc[j] = 0;
                }
                d = putF16(dst, blk + D_OFFSET, 0.f);
            }
            float dmin;
            if (maxMin > 0) {
                float iscale = q4scale / maxMin;
                for (int j = 0; j < QK_K / 16; ++j) {
                    int l = nearestInt(iscale * mins[j]);
                    sc[j] = (sc[j] | (l << 4)) & 0xFF;
                }
                dmin = putF16(dst, blk + DMIN_OFFSET, maxMin / q4scale);
            } else {
                dmin = putF16(dst, blk + DMIN_OFFSET, 0.f);
            }
            for (int j = 0; j < QK_K / 16; ++j) {
                putU8(dst, blk + SCALES_OFFSET + j, sc[j]);
                float dj = d * (sc[j] & 0xF);
                if (dj == 0) {
                    continue; // keeps the levels make_qkx2_quants chose, as ggml does
                }
                float dm = dmin * (sc[j] >> 4);
                for (int ii = 0; ii < 16; ++ii) {
                    int l = nearestInt((src[x + 16 * j + ii] + dm) / dj);
                    L[16 * j + ii] = (byte) Math.max(0, Math.min(3, l));
                }
            }
            KQuantMath.pack2Bit(L, dst, blk + QS_OFFSET);
        }
    }
}
