package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.u16;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * IQ1_M (1.75 bpw): 256 weights in groups of 8 with an 11-bit index into {@link IqGrids#IQ1S} (low 8 bits in
 * {@code qs}; each {@code qh} byte holds the high 3 bits and the shift sign of two groups, in its low and high
 * nibble). The four uint16 {@code scales} hold a 3-bit scale per 16 weights (word {@code ib/2}, bits
 * {@code 6(ib%2)..+2} and {@code +3..+5} for the two halves of 32-weight group {@code ib}) and, in their top
 * nibbles, the f16 super-scale {@code d} (ggml-common.h {@code block_iq1_m}, 56 bytes). A weight is {@code d * (2s + 1) * (grid + delta)}, {@code delta = ±1/8}. Stateless and thread-safe.
 */
public final class IQ1_MCodec implements BlockCodec {

    /** {@code uint8_t qs[32]}: low 8 index bits per 8 weights. */
    static final int QS_OFFSET = 0;
    /** {@code uint8_t qh[16]}: per two groups, high index bits (bits 0..2, 4..6) and shift signs (bits 3, 7). */
    static final int QH_OFFSET = 32;
    /** {@code uint8_t scales[8]}: read as four uint16 of sub-block scales with the f16 scale in the top nibbles. */
    static final int SCALES_OFFSET = 48;
    static final int BLOCK_BYTES = 56;
    static final int BLOCK_SIZE = 256;

    @Override
    public GgmlType type() {
        return GgmlType.IQ1_M;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ1_M, count);
        byte[] grid = IqGrids.IQ1S;
        long block = srcOffset;
        for (int y = dstIndex, end = dstIndex + count; y < end; block += BLOCK_BYTES) {
            int sc0 = u16(src, block + SCALES_OFFSET);
            int sc1 = u16(src, block + SCALES_OFFSET + 2);
            int sc2 = u16(src, block + SCALES_OFFSET + 4);
            int sc3 = u16(src, block + SCALES_OFFSET + 6);
            int scale = (sc0 >>> 12) | ((sc1 >>> 8) & 0x00F0) | ((sc2 >>> 4) & 0x0F00) | (sc3 & 0xF000);
            float d = Float.float16ToFloat((short) scale);
            for (int ib = 0; ib < 8; ib++) {
                int sc = u16(src, block + SCALES_OFFSET + 2L * (ib / 2));
                float dl1 = d * (2 * ((sc >>> (6 * (ib % 2))) & 0x7) + 1);
                float dl2 = d * (2 * ((sc >>> (6 * (ib % 2) + 3)) & 0x7) + 1);
                long qs = block + QS_OFFSET + 4L * ib;
                int qh0 = u8(src, block + QH_OFFSET + 2L * ib);
                int qh1 = u8(src, block + QH_OFFSET + 2L * ib + 1);
                y = group(grid, u8(src, qs) | ((qh0 << 8) & 0x700), delta(qh0 & 0x08), dl1, dst, y);
                y = group(grid, u8(src, qs + 1) | ((qh0 << 4) & 0x700), delta(qh0 & 0x80), dl1, dst, y);
                y = group(grid, u8(src, qs + 2) | ((qh1 << 8) & 0x700), delta(qh1 & 0x08), dl2, dst, y);
                y = group(grid, u8(src, qs + 3) | ((qh1 << 4) & 0x700), delta(qh1 & 0x80), dl2, dst, y);
            }
        }
    }

    private static float delta(int signBit) {
        return signBit != 0 ? -IqGrids.IQ1S_DELTA : IqGrids.IQ1S_DELTA;
    }

    private static int group(byte[] grid, int index, float delta, float dl, float[] dst, int y) {
        int g = 8 * index;
        for (int j = 0; j < 8; j++) {
            dst[y + j] = dl * (grid[g + j] + delta);
        }
        return y + 8;
    }
}
