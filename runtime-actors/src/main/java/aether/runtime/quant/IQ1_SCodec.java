package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.LittleEndian.u16;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * IQ1_S (1.5625 bpw): 256 weights in groups of 8, each an 11-bit index into {@link IqGrids#IQ1S} (values -1, 0, 1):
 * low 8 bits in {@code qs}, high 3 in {@code qh[ib]} bits {@code 3l..3l+2}. Per 32 weights, {@code qh[ib]} also
 * holds a 3-bit scale {@code s} (bits 12..14) and the sign of the shift (bit 15), so a weight is
 * {@code d * (2s + 1) * (grid + delta)} with {@code delta = ±1/8} (ggml-common.h {@code block_iq1_s}, 50 bytes).
 * Stateless and thread-safe.
 */
public final class IQ1_SCodec implements BlockCodec {

    /** {@code ggml_half d}: the super-block scale. */
    static final int D_OFFSET = 0;
    /** {@code uint8_t qs[32]}: low 8 index bits per 8 weights. */
    static final int QS_OFFSET = 2;
    /** {@code uint16_t qh[8]}: high index bits, scale and shift sign per 32 weights. */
    static final int QH_OFFSET = 34;
    static final int BLOCK_BYTES = 50;
    static final int BLOCK_SIZE = 256;

    @Override
    public GgmlType type() {
        return GgmlType.IQ1_S;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ1_S, count);
        byte[] grid = IqGrids.IQ1S;
        long block = srcOffset;
        for (int y = dstIndex, end = dstIndex + count; y < end; block += BLOCK_BYTES) {
            float d = f16(src, block + D_OFFSET);
            for (int ib = 0; ib < 8; ib++) {
                int qh = u16(src, block + QH_OFFSET + 2L * ib);
                float dl = d * (2 * ((qh >>> 12) & 7) + 1);
                float delta = (qh & 0x8000) != 0 ? -IqGrids.IQ1S_DELTA : IqGrids.IQ1S_DELTA;
                for (int l = 0; l < 4; l++) {
                    int g = 8 * (u8(src, block + QS_OFFSET + 4 * ib + l) | (((qh >>> 3 * l) & 7) << 8));
                    for (int j = 0; j < 8; j++) {
                        dst[y + j] = dl * (grid[g + j] + delta);
                    }
                    y += 8;
                }
            }
        }
    }
}
