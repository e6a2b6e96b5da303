package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * {@link GgmlType#Q4_1}: blocks of 32 elements, {@code x = q * d + m} with 4-bit {@code q}. Layout is ggml-common.h
 * {@code block_q4_1}. Dequantization is ggml's {@code dequantize_row_q4_1}, quantization {@code quantize_row_q4_1_ref},
 * bit for bit.
 */
public final class Q4_1Codec implements BlockCodec {

    /** Elements per block ({@code QK4_1}). */
    static final int BLOCK_SIZE = 32;
    /** {@code ggml_half d}: the scale, f16. */
    static final int D_OFFSET = 0;
    /** {@code ggml_half m}: the block minimum, f16. */
    static final int M_OFFSET = 2;
    /** {@code uint8_t qs[16]}: element j in the low nibble of {@code qs[j]}, element j+16 in the high nibble. */
    static final int QS_OFFSET = 4;
    /** Bytes per block. */
    static final int BLOCK_BYTES = QS_OFFSET + BLOCK_SIZE / 2;

    /** The scalar reference, always available; tests compare {@link #VECTOR} with it. */
    static final Q4_1Codec SCALAR = new Q4_1Codec(false);
    /** The Vector API path; needs {@code jdk.incubator.vector} ({@link Vectorization#available()}). */
    static final Q4_1Codec VECTOR = new Q4_1Codec(true);
    /** The codec to use: {@link #VECTOR} where {@link Vectorization#ENABLED}, else {@link #SCALAR}. */
    public static final Q4_1Codec INSTANCE = Vectorization.ENABLED ? VECTOR : SCALAR;

    private final boolean vectorized;

    private Q4_1Codec(boolean vectorized) {
        this.vectorized = vectorized;
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q4_1;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.Q4_1, count);
        int blocks = count / BLOCK_SIZE;
        if (vectorized) {
            VectorKernels.q4_1(src, srcOffset, dst, dstIndex, blocks);
            return;
        }
        for (int b = 0; b < blocks; b++) {
            long block = srcOffset + (long) b * BLOCK_BYTES;
            int out = dstIndex + b * BLOCK_SIZE;
            float d = LittleEndian.f16(src, block + D_OFFSET);
            float m = LittleEndian.f16(src, block + M_OFFSET);
            for (int j = 0; j < BLOCK_SIZE / 2; j++) {
                int q = src.get(LittleEndian.BYTE, block + QS_OFFSET + j) & 0xFF;
                dst[out + j] = (q & 0x0F) * d + m;   // Java never fuses: two roundings, as ggml's reference
                dst[out + j + BLOCK_SIZE / 2] = (q >>> 4) * d + m;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(GgmlType.Q4_1, count);
        for (int b = 0, blocks = count / BLOCK_SIZE; b < blocks; b++) {
            int in = srcIndex + b * BLOCK_SIZE;
            long block = dstOffset + (long) b * BLOCK_BYTES;
            float min = Float.MAX_VALUE;
            float max = -Float.MAX_VALUE;
            for (int j = 0; j < BLOCK_SIZE; j++) {
                float v = src[in + j];
                if (v < min) {
                    min = v;
                }
                if (v > max) {
                    max = v;
                }
            }
            float d = (max - min) / ((1 << 4) - 1);
            float id = d != 0.0f ? 1.0f / d : 0.0f;
            dst.set(LittleEndian.SHORT, block + D_OFFSET, Float.floatToFloat16(d));
            dst.set(LittleEndian.SHORT, block + M_OFFSET, Float.floatToFloat16(min));
            for (int j = 0; j < BLOCK_SIZE / 2; j++) {
                float x0 = (src[in + j] - min) * id;
                float x1 = (src[in + BLOCK_SIZE / 2 + j] - min) * id;
                int q0 = Math.min(15, CFloat.truncToInt8(x0 + 0.5f)) & 0xFF;
                int q1 = Math.min(15, CFloat.truncToInt8(x1 + 0.5f)) & 0xFF;
                dst.set(LittleEndian.BYTE, block + QS_OFFSET + j, (byte) (q0 | (q1 << 4)));
            }
        }
    }
}
