package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * IQ3_S (3.4375 bpw): 256 weights as 64 9-bit indices into {@link IqGrids#IQ3S} (low 8 bits in {@code qs}, the
 * ninth in {@code qh}: index {@code 8p + m} uses bit {@code m} of {@code qh[p]}), explicit sign bytes (one per 8
 * weights) and per 64 weights two 4-bit scales {@code s} giving {@code d * (1 + 2s)} (ggml-common.h
 * {@code block_iq3_s}, 110 bytes). Stateless and thread-safe.
 */
public final class IQ3_SCodec implements BlockCodec {

    /** {@code ggml_half d}: the super-block scale. */
    static final int D_OFFSET = 0;
    /** {@code uint8_t qs[64]}: low 8 bits of the grid indices. */
    static final int QS_OFFSET = 2;
    /** {@code uint8_t qh[8]}: ninth index bits. */
    static final int QH_OFFSET = 66;
    /** {@code uint8_t signs[32]}: one sign byte per 8 weights. */
    static final int SIGNS_OFFSET = 74;
    /** {@code uint8_t scales[4]}: two 4-bit scales per 64 weights. */
    static final int SCALES_OFFSET = 106;
    static final int BLOCK_BYTES = 110;
    static final int BLOCK_SIZE = 256;

    @Override
    public GgmlType type() {
        return GgmlType.IQ3_S;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ3_S, count);
        long block = srcOffset;
        for (int y = dstIndex, end = dstIndex + count; y < end; y += BLOCK_SIZE, block += BLOCK_BYTES) {
            float d = f16(src, block + D_OFFSET);
            for (int pair = 0; pair < 4; pair++) {
                int sc = u8(src, block + SCALES_OFFSET + pair);
                float db1 = d * (1 + 2 * (sc & 0xF));
                float db2 = d * (1 + 2 * (sc >>> 4));
                decode32(src, block, 2 * pair, db1, dst, y + 64 * pair);
                decode32(src, block, 2 * pair + 1, db2, dst, y + 64 * pair + 32);
            }
        }
    }

    /** The 32 weights of group {@code ib32} (8 indices, 4 sign bytes, {@code qh[ib32]}) at scale {@code db}. */
    private static void decode32(MemorySegment src, long block, int ib32, float db, float[] dst, int y) {
        byte[] grid = IqGrids.IQ3S;
        int qh = u8(src, block + QH_OFFSET + ib32);
        long qs = block + QS_OFFSET + 8L * ib32;
        for (int l = 0; l < 4; l++) {
            int g1 = 4 * (u8(src, qs + 2 * l) | ((qh << (8 - 2 * l)) & 256));
            int g2 = 4 * (u8(src, qs + 2 * l + 1) | ((qh << (7 - 2 * l)) & 256));
            int signs = u8(src, block + SIGNS_OFFSET + 4L * ib32 + l);
            for (int j = 0; j < 4; j++) {
                dst[y + j] = db * grid[g1 + j] * IqGrids.sign(signs, j);
                dst[y + j + 4] = db * grid[g2 + j] * IqGrids.sign(signs, j + 4);
            }
            y += 8;
        }
    }
}
