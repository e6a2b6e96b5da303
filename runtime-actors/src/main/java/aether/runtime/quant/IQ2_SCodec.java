package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * IQ2_S (2.5625 bpw): 256 weights in 32 groups of 8 with a 10-bit index into {@link IqGrids#IQ2S} (low 8 bits in
 * {@code qs[0..31]}, top 2 bits in {@code qh}) and an explicit sign byte ({@code qs[32..63]}); 4-bit scales as in
 * IQ2_XS (ggml-common.h {@code block_iq2_s}, 82 bytes). Stateless and thread-safe.
 */
public final class IQ2_SCodec implements BlockCodec {

    /** {@code ggml_half d}: the super-block scale. */
    static final int D_OFFSET = 0;
    /** {@code uint8_t qs[64]}: 32 low index bytes, then 32 sign bytes. */
    static final int QS_OFFSET = 2;
    static final int SIGNS_OFFSET = QS_OFFSET + 32;
    /** {@code uint8_t qh[8]}: per 32 weights, bits {@code 2l..2l+1} are index bits 8..9 of group {@code l}. */
    static final int QH_OFFSET = 66;
    /** {@code uint8_t scales[8]}: two 4-bit scales per 32 weights. */
    static final int SCALES_OFFSET = 74;
    static final int BLOCK_BYTES = 82;
    static final int BLOCK_SIZE = 256;

    @Override
    public GgmlType type() {
        return GgmlType.IQ2_S;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ2_S, count);
        byte[] grid = IqGrids.IQ2S;
        long block = srcOffset;
        for (int y = dstIndex, end = dstIndex + count; y < end; block += BLOCK_BYTES) {
            float d = f16(src, block + D_OFFSET);
            for (int ib32 = 0; ib32 < 8; ib32++) {
                int sc = u8(src, block + SCALES_OFFSET + ib32);
                float db0 = d * (0.5f + (sc & 0xF)) * 0.25f;
                float db1 = d * (0.5f + (sc >>> 4)) * 0.25f;
                int qh = u8(src, block + QH_OFFSET + ib32);
                for (int l = 0; l < 4; l++) {
                    float dl = l < 2 ? db0 : db1;
                    int index = u8(src, block + QS_OFFSET + 4 * ib32 + l) | (qh << (8 - 2 * l) & 0x300);
                    int g = 8 * index;
                    int signs = u8(src, block + SIGNS_OFFSET + 4 * ib32 + l);
                    for (int j = 0; j < 8; j++) {
                        dst[y + j] = dl * grid[g + j] * IqGrids.sign(signs, j);
                    }
                    y += 8;
                }
            }
        }
    }
}
