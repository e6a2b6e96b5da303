package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.LittleEndian.u32;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * IQ2_XXS (2.0625 bpw): 256 weights in 8 groups of 32, each group two little-endian uint32: the first holds four
 * 8-bit indices into {@link IqGrids#IQ2XXS} (8 magnitudes each), the second four 7-bit sign indices into
 * {@link IqGrids#KSIGNS_IQ2XS} (bits {@code 7l..7l+6}) and a 4-bit scale {@code s} (bits 28..31); the group's
 * scale is {@code d * (0.5 + s) * 0.25} (ggml-common.h {@code block_iq2_xxs}, 66 bytes). Stateless and
 * thread-safe.
 */
public final class IQ2_XXSCodec implements BlockCodec {

    /** {@code ggml_half d}: the super-block scale. */
    static final int D_OFFSET = 0;
    /** {@code uint16_t qs[32]}: per group of 32, 8 bytes (grid indices, then signs and scale). */
    static final int QS_OFFSET = 2;
    static final int BLOCK_BYTES = 66;
    static final int BLOCK_SIZE = 256;

    @Override
    public GgmlType type() {
        return GgmlType.IQ2_XXS;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ2_XXS, count);
        byte[] grid = IqGrids.IQ2XXS;
        long block = srcOffset;
        for (int y = dstIndex, end = dstIndex + count; y < end; block += BLOCK_BYTES) {
            float d = f16(src, block + D_OFFSET);
            for (int ib32 = 0; ib32 < 8; ib32++) {
                long group = block + QS_OFFSET + 8L * ib32;
                int aux1 = u32(src, group + 4);
                float db = d * (0.5f + (aux1 >>> 28)) * 0.25f;
                for (int l = 0; l < 4; l++) {
                    int g = 8 * u8(src, group + l);
                    int signs = IqGrids.KSIGNS_IQ2XS[(aux1 >>> 7 * l) & 127];
                    for (int j = 0; j < 8; j++) {
                        dst[y + j] = db * grid[g + j] * IqGrids.sign(signs, j);
                    }
                    y += 8;
                }
            }
        }
    }
}
