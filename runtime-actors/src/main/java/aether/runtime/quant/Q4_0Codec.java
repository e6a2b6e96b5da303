package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * {@link GgmlType#Q4_0}: blocks of 32 elements, {@code x = (q - 8) * d} with 4-bit {@code q}. Layout is ggml-common.h
 * {@code block_q4_0}. Dequantization is ggml's {@code dequantize_row_q4_0}, quantization {@code quantize_row_q4_0_ref},
 * bit for bit.
 */
public final class Q4_0Codec implements BlockCodec {

    /** Elements per block ({@code QK4_0}). */
    static final int BLOCK_SIZE = 32;
    /** {@code ggml_half d}: the scale, f16; negative when the block's largest-magnitude value is positive. */
    static final int D_OFFSET = 0;
    /** {@code uint8_t qs[16]}: element j in the low nibble of {@code qs[j]}, element j+16 in the high nibble. */
    static final int QS_OFFSET = 2;
    /** Bytes per block. */
    static final int BLOCK_BYTES = QS_OFFSET + BLOCK_SIZE / 2;

    /** The scalar reference, always available; tests compare {@link #VECTOR} with it. */
    static final Q4_0Codec SCALAR = new Q4_0Codec(false);
    /** The Vector API path; needs {@code jdk.incubator.vector} ({@link Vectorization#available()}). */
    static final Q4_0Codec VECTOR = new Q4_0Codec(true);
    /** The codec to use: {@link #VECTOR} where {@link Vectorization#ENABLED}, else {@link #SCALAR}. */
    public static final Q4_0Codec INSTANCE = Vectorization.ENABLED ? VECTOR : SCALAR;

    private final boolean vectorized;

    private Q4_0Codec(boolean vectorized) {
        this.vectorized = vectorized;
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q4_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.Q4_0, count);
        int blocks = count / BLOCK_SIZE;
        if (vectorized) {
            VectorKernels.q4_0(src, srcOffset, dst, dstIndex, blocks);
            return;
        }
        for (int b = 0; b < blocks; b++) {
            long block = srcOffset + (long) b * BLOCK_BYTES;
            int out = dstIndex + b * BLOCK_SIZE;
            float d = LittleEndian.f16(src, block + D_OFFSET);
            for (int j = 0; j < BLOCK_SIZE / 2; j++) {
                int q = src.get(LittleEndian.BYTE, block + QS_OFFSET + j) & 0xFF;
                dst[out + j] = ((q & 0x0F) - 8) * d;
                dst[out + j + BLOCK_SIZE / 2] = ((q >>> 4) - 8) * d;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(GgmlType.Q4_0, count);
        for (int b = 0, blocks = count / BLOCK_SIZE; b < blocks; b++) {
            int in = srcIndex + b * BLOCK_SIZE;
            long block = dstOffset + (long) b * BLOCK_BYTES;
            float amax = 0.0f;
            float max = 0.0f;   // the signed value of largest magnitude (the first one, on ties)
            for (int j = 0; j < BLOCK_SIZE; j++) {
                float v = src[in + j];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8;
            float id = d != 0.0f ? 1.0f / d : 0.0f;
            dst.set(LittleEndian.SHORT, block + D_OFFSET, Float.floatToFloat16(d));
            for (int j = 0; j < BLOCK_SIZE / 2; j++) {
                float x0 = src[in + j] * id;
                float x1 = src[in + BLOCK_SIZE / 2 + j] * id;
                // C: MIN(15, (int8_t)(x + 8.5f)) -- truncation of the biased value, not roundf
                int q0 = Math.min(15, CFloat.truncToInt8(x0 + 8.5f)) & 0xFF;
                int q1 = Math.min(15, CFloat.truncToInt8(x1 + 8.5f)) & 0xFF;
                dst.set(LittleEndian.BYTE, block + QS_OFFSET + j, (byte) (q0 | (q1 << 4)));
            }
        }
    }
}
