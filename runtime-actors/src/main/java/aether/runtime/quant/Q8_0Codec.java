package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * {@link GgmlType#Q8_0}: blocks of 32 elements, {@code x = q * d}. Layout is ggml-common.h {@code block_q8_0}.
 * Dequantization is ggml's {@code dequantize_row_q8_0}, quantization {@code quantize_row_q8_0_ref}, bit for bit.
 */
public final class Q8_0Codec implements BlockCodec {

    /** Elements per block ({@code QK8_0}). */
    static final int BLOCK_SIZE = 32;
    /** {@code ggml_half d}: the scale, f16. */
    static final int D_OFFSET = 0;
    /** {@code int8_t qs[32]}: element j is {@code qs[j]}. */
    static final int QS_OFFSET = 2;
    /** Bytes per block. */
    static final int BLOCK_BYTES = QS_OFFSET + BLOCK_SIZE;

    /** The scalar reference, always available; tests compare {@link #VECTOR} with it. */
    static final Q8_0Codec SCALAR = new Q8_0Codec(false);
    /** The Vector API path; needs {@code jdk.incubator.vector} ({@link Vectorization#available()}). */
    static final Q8_0Codec VECTOR = new Q8_0Codec(true);
    /** The codec to use: {@link #VECTOR} where {@link Vectorization#ENABLED}, else {@link #SCALAR}. */
    public static final Q8_0Codec INSTANCE = Vectorization.ENABLED ? VECTOR : SCALAR;

    private final boolean vectorized;

    private Q8_0Codec(boolean vectorized) {
        this.vectorized = vectorized;
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q8_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.Q8_0, count);
        int blocks = count / BLOCK_SIZE;
        if (vectorized) {
            VectorKernels.q8_0(src, srcOffset, dst, dstIndex, blocks);
            return;
        }
        for (int b = 0; b < blocks; b++) {
            long block = srcOffset + (long) b * BLOCK_BYTES;
            int out = dstIndex + b * BLOCK_SIZE;
            float d = LittleEndian.f16(src, block + D_OFFSET);
            for (int j = 0; j < BLOCK_SIZE; j++) {
                dst[out + j] = src.get(LittleEndian.BYTE, block + QS_OFFSET + j) * d;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(GgmlType.Q8_0, count);
        for (int b = 0, blocks = count / BLOCK_SIZE; b < blocks; b++) {
            int in = srcIndex + b * BLOCK_SIZE;
            long block = dstOffset + (long) b * BLOCK_BYTES;
            float amax = 0.0f;
            for (int j = 0; j < BLOCK_SIZE; j++) {
                float a = Math.abs(src[in + j]);
                amax = amax > a ? amax : a;   // ggml's MAX(amax, fabsf(v)), NaN propagating the same way
            }
            float d = amax / ((1 << 7) - 1);
            float id = d != 0.0f ? 1.0f / d : 0.0f;   // C's `d ?`: NaN counts as non-zero
            dst.set(LittleEndian.SHORT, block + D_OFFSET, Float.floatToFloat16(d));
            for (int j = 0; j < BLOCK_SIZE; j++) {
                dst.set(LittleEndian.BYTE, block + QS_OFFSET + j, (byte) (int) CFloat.roundf(src[in + j] * id));
            }
        }
    }
}
