package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.LittleEndian.u16;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * IQ4_XS: 256 weights in 8 sub-blocks of 32, each with a 6-bit scale (biased by 32) times one f16 super-scale, and
 * 4-bit indices into {@link IQ4_NLCodec#KVALUES} (ggml-common.h {@code block_iq4_xs}, 136 bytes). Sub-block
 * {@code ib}'s scale is the nibble {@code ib % 2} of {@code scales_l[ib / 2]} plus bits {@code 2ib..2ib+1} of
 * {@code scales_h} as its top two bits. Stateless and thread-safe.
 */
public final class IQ4_XSCodec implements BlockCodec {

    /** {@code ggml_half d}: the super-block scale. */
    static final int D_OFFSET = 0;
    /** {@code uint16_t scales_h}: high 2 bits of the 8 sub-block scales. */
    static final int SCALES_H_OFFSET = 2;
    /** {@code uint8_t scales_l[4]}: low 4 bits of the 8 sub-block scales. */
    static final int SCALES_L_OFFSET = 4;
    /** {@code uint8_t qs[128]}: 16 bytes per sub-block, laid out as in IQ4_NL. */
    static final int QS_OFFSET = 8;
    static final int BLOCK_BYTES = 136;
    static final int BLOCK_SIZE = 256;

    @Override
    public GgmlType type() {
        return GgmlType.IQ4_XS;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ4_XS, count);
        byte[] kvalues = IQ4_NLCodec.KVALUES;
        long block = srcOffset;
        for (int out = dstIndex, end = dstIndex + count; out < end; out += BLOCK_SIZE, block += BLOCK_BYTES) {
            float d = f16(src, block + D_OFFSET);
            int scalesH = u16(src, block + SCALES_H_OFFSET);
            for (int ib = 0; ib < 8; ib++) {
                int ls = ((u8(src, block + SCALES_L_OFFSET + ib / 2) >>> 4 * (ib % 2)) & 0xF)
                        | (((scalesH >>> 2 * ib) & 3) << 4);
                float dl = d * (ls - 32);
                long qs = block + QS_OFFSET + 16L * ib;
                int y = out + 32 * ib;
                for (int j = 0; j < 16; j++) {
                    int q = u8(src, qs + j);
                    dst[y + j] = dl * kvalues[q & 0xF];
                    dst[y + j + 16] = dl * kvalues[q >>> 4];
                }
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /** llama.cpp's {@code quantize_iq4_xs} without an importance matrix. */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ4_XS, count);
        Iq4NonLinearQuantizer.Scratch scratch = Iq4NonLinearQuantizer.scratch();
        long block = dstOffset;
        for (int in = srcIndex, end = srcIndex + count; in < end; in += BLOCK_SIZE, block += BLOCK_BYTES) {
            Iq4NonLinearQuantizer.quantize(BLOCK_SIZE, src, in, dst, block + D_OFFSET, block + QS_OFFSET,
                    block + SCALES_H_OFFSET, block + SCALES_L_OFFSET, scratch);
        }
    }
}
