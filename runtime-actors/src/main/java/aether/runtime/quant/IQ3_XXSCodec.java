package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.LittleEndian.u32;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * IQ3_XXS (3.0625 bpw): 256 weights as 64 8-bit indices into {@link IqGrids#IQ3XXS} (4 magnitudes each), then per
 * 32 weights a little-endian uint32 with four 7-bit sign indices (bits {@code 7l..7l+6}, one per 8 weights) and a
 * 4-bit scale {@code s} (bits 28..31) giving {@code d * (0.5 + s) * 0.5} (ggml-common.h {@code block_iq3_xxs}, 98
 * bytes). Stateless and thread-safe.
 */
public final class IQ3_XXSCodec implements BlockCodec {

    /** {@code ggml_half d}: the super-block scale. */
    static final int D_OFFSET = 0;
    /** {@code uint8_t qs[64]}: grid indices, two per 8 weights. */
    static final int QS_OFFSET = 2;
    /** {@code uint8_t qs[64..95]}: the 8 scale-and-signs uint32 words. */
    static final int SCALES_AND_SIGNS_OFFSET = 66;
    static final int BLOCK_BYTES = 98;
    static final int BLOCK_SIZE = 256;

    @Override
    public GgmlType type() {
        return GgmlType.IQ3_XXS;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ3_XXS, count);
        byte[] grid = IqGrids.IQ3XXS;
        long block = srcOffset;
        for (int y = dstIndex, end = dstIndex + count; y < end; block += BLOCK_BYTES) {
            float d = f16(src, block + D_OFFSET);
            for (int ib32 = 0; ib32 < 8; ib32++) {
                int aux = u32(src, block + SCALES_AND_SIGNS_OFFSET + 4L * ib32);
                float db = d * (0.5f + (aux >>> 28)) * 0.5f;
                long qs = block + QS_OFFSET + 8L * ib32;
                for (int l = 0; l < 4; l++) {
                    int signs = IqGrids.KSIGNS_IQ2XS[(aux >>> 7 * l) & 127];
                    int g1 = 4 * u8(src, qs + 2 * l);
                    int g2 = 4 * u8(src, qs + 2 * l + 1);
                    for (int j = 0; j < 4; j++) {
                        dst[y + j] = db * grid[g1 + j] * IqGrids.sign(signs, j);
                        dst[y + j + 4] = db * grid[g2 + j] * IqGrids.sign(signs, j + 4);
                    }
                    y += 8;
                }
            }
        }
    }
}
