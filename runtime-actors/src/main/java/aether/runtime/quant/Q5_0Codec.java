package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * {@link GgmlType#Q5_0}: blocks of 32 elements, {@code x = (q - 16) * d} with 5-bit {@code q}. Layout is ggml-common.h
 * {@code block_q5_0}. Dequantization is ggml's {@code dequantize_row_q5_0}, quantization {@code quantize_row_q5_0_ref},
 * bit for bit.
 */
public final class Q5_0Codec implements BlockCodec {

    /** Elements per block ({@code QK5_0}). */
    static final int BLOCK_SIZE = 32;
    /** {@code ggml_half d}: the scale, f16. */
    static final int D_OFFSET = 0;
    /** {@code uint8_t qh[4]}: little-endian uint32, bit j is the fifth bit of element j. */
    static final int QH_OFFSET = 2;
    /** {@code uint8_t qs[16]}: low 4 bits; element j in the low nibble of {@code qs[j]}, j+16 in the high nibble. */
    static final int QS_OFFSET = 6;
    /** Bytes per block. */
    static final int BLOCK_BYTES = QS_OFFSET + BLOCK_SIZE / 2;

    /** The scalar reference, always available; tests compare {@link #VECTOR} with it. */
    static final Q5_0Codec SCALAR = new Q5_0Codec(false);
    /** The Vector API path; needs {@code jdk.incubator.vector} ({@link Vectorization#available()}). */
    static final Q5_0Codec VECTOR = new Q5_0Codec(true);
    /** The codec to use: {@link #VECTOR} where {@link Vectorization#ENABLED}, else {@link #SCALAR}. */
    public static final Q5_0Codec INSTANCE = Vectorization.ENABLED ? VECTOR : SCALAR;

    private final boolean vectorized;

    private Q5_0Codec(boolean vectorized) {
        this.vectorized = vectorized;
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q5_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.Q5_0, count);
        int blocks = count / BLOCK_SIZE;
        if (vectorized) {
            VectorKernels.q5_0(src, srcOffset, dst, dstIndex, blocks);
            return;
        }
        for (int b = 0; b < blocks; b++) {
            long block = srcOffset + (long) b * BLOCK_BYTES;
            int out = dstIndex + b * BLOCK_SIZE;
            float d = LittleEndian.f16(src, block + D_OFFSET);
            int qh = src.get(LittleEndian.INT, block + QH_OFFSET);
            for (int j = 0; j < BLOCK_SIZE / 2; j++) {
                int q = src.get(LittleEndian.BYTE, block + QS_OFFSET + j) & 0xFF;
                int high0 = ((qh >>> j) << 4) & 0x10;
                int high1 = (qh >>> (j + 12)) & 0x10;
                dst[out + j] = (((q & 0x0F) | high0) - 16) * d;
                dst[out + j + BLOCK_SIZE / 2] = (((q >>> 4) | high1) - 16) * d;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(GgmlType.Q5_0, count);
        for (int b = 0, blocks = count / BLOCK_SIZE; b < blocks; b++) {
            int in = srcIndex + b * BLOCK_SIZE;
            long block = dstOffset + (long) b * BLOCK_BYTES;
            float amax = 0.0f;
            float max = 0.0f;
            for (int j = 0; j < BLOCK_SIZE; j++) {
                float v = src[in + j];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -16;
            float id = d != 0.0f ? 1.0f / d : 0.0f;
            dst.set(LittleEndian.SHORT, block + D_OFFSET, Float.floatToFloat16(d));
            int qh = 0;
            for (int j = 0; j < BLOCK_SIZE / 2; j++) {
                float x0 = src[in + j] * id;
                float x1 = src[in + BLOCK_SIZE / 2 + j] * id;
                int q0 = Math.min(31, CFloat.truncToInt8(x0 + 16.5f)) & 0xFF;
                int q1 = Math.min(31, CFloat.truncToInt8(x1 + 16.5f)) & 0xFF;
                dst.set(LittleEndian.BYTE, block + QS_OFFSET + j, (byte) ((q0 & 0x0F) | ((q1 & 0x0F) << 4)));
                qh |= ((q0 & 0x10) >>> 4) << j;
                qh |= ((q1 & 0x10) >>> 4) << (j + BLOCK_SIZE / 2);
            }
            dst.set(LittleEndian.INT, block + QH_OFFSET, qh);
        }
    }
}
