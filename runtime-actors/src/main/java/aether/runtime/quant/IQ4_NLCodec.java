package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * IQ4_NL: 32 weights as 4-bit indices into the non-linear table {@link #KVALUES} with one f16 scale
 * (ggml-common.h {@code block_iq4_nl}, 18 bytes). Element {@code j < 16} is the low nibble of {@code qs[j]}, element
 * {@code j + 16} its high nibble. Stateless and thread-safe.
 */
public final class IQ4_NLCodec implements BlockCodec {

    /** {@code ggml_half d}: the block scale. */
    static final int D_OFFSET = 0;
    /** {@code uint8_t qs[16]}: two 4-bit indices per byte. */
    static final int QS_OFFSET = 2;
    static final int BLOCK_BYTES = 18;
    static final int BLOCK_SIZE = 32;

    /** ggml-common.h {@code kvalues_iq4nl}: the 16 levels, ascending. */
    static final byte[] KVALUES = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    @Override
    public GgmlType type() {
        return GgmlType.IQ4_NL;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ4_NL, count);
        long block = srcOffset;
        for (int out = dstIndex, end = dstIndex + count; out < end; out += BLOCK_SIZE, block += BLOCK_BYTES) {
            float d = f16(src, block + D_OFFSET);
            for (int j = 0; j < 16; j++) {
                int q = u8(src, block + QS_OFFSET + j);
                dst[out + j] = d * KVALUES[q & 0xF];
                dst[out + j + 16] = d * KVALUES[q >>> 4];
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /** llama.cpp's {@code quantize_iq4_nl} without an importance matrix (best of 15 trial scales per block). */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(GgmlType.IQ4_NL, count);
        Iq4NonLinearQuantizer.Scratch scratch = Iq4NonLinearQuantizer.scratch();
        long block = dstOffset;
        for (int in = srcIndex, end = srcIndex + count; in < end; in += BLOCK_SIZE, block += BLOCK_BYTES) {
            Iq4NonLinearQuantizer.quantize(BLOCK_SIZE, src, in, dst, block + D_OFFSET, block + QS_OFFSET, -1, -1,
                    scratch);
        }
    }
}
