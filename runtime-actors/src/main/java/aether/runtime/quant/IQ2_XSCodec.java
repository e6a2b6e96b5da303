package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.LittleEndian.u16;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * IQ2_XS (2.3125 bpw): 256 weights in 32 groups of 8, each a uint16 holding a 9-bit index into
 * {@link IqGrids#IQ2XS} and a 7-bit sign index into {@link IqGrids#KSIGNS_IQ2XS}; each 32 weights have two 4-bit
 * scales {@code s} (low nibble for the first 16, high for the second) giving {@code d * (0.5 + s) * 0.25}
 * (ggml-common.h {@code block_iq2_xs}, 74 bytes). Stateless and thread-safe.
 */
public final class IQ2_XSCodec implements BlockCodec {

    /** {@code ggml_half d}: the super-block scale. */
    static final int D_OFFSET = 0;
    /** {@code uint16_t qs[32]}: grid index (bits 0..8) and sign index (bits 9..15) per 8 weights. */
    static final int QS_OFFSET = 2;
    /** {@code uint8_t scales[8]}: two 4-bit scales per 32 weights. */
    static final int SCALES_OFFSET = 66;
    static final int BLOCK_BYTES = 74;
    static final int BLOCK_SIZE = 256;

    @Override
    public GgmlType type() {
        return GgmlType.IQ2_XS;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ2_XS, count);
        byte[] grid = IqGrids.IQ2XS;
        long block = srcOffset;
        for (int y = dstIndex, end = dstIndex + count; y < end; block += BLOCK_BYTES) {
            float d = f16(src, block + D_OFFSET);
            for (int ib32 = 0; ib32 < 8; ib32++) {
                int sc = u8(src, block + SCALES_OFFSET + ib32);
                float db0 = d * (0.5f + (sc & 0xF)) * 0.25f;
                float db1 = d * (0.5f + (sc >>> 4)) * 0.25f;
                for (int l = 0; l < 4; l++) {
                    int q = u16(src, block + QS_OFFSET + 2L * (4 * ib32 + l));
                    int g = 8 * (q & 511);
                    int signs = IqGrids.KSIGNS_IQ2XS[q >>> 9];
                    float db = l < 2 ? db0 : db1;
                    for (int j = 0; j < 8; j++) {
                        dst[y + j] = db * grid[g + j] * IqGrids.sign(signs, j);
                    }
                    y += 8;
                }
            }
        }
    }
}
