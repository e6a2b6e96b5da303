package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * {@link GgmlType#Q8_1}: blocks of 32 elements, {@code x = q * d}, plus {@code s = d * sum(q)} that dot products with
 * Q4_1/Q5_1 use for the min term. ggml uses it only for activations and defines no {@code dequantize_row_q8_1}; reading
 * {@code q * d} (ignoring {@code s}) is what the format means. Quantization is {@code quantize_row_q8_1_ref}.
 */
public final class Q8_1Codec implements BlockCodec {

    /** Elements per block ({@code QK8_1}). */
    static final int BLOCK_SIZE = 32;
    /** {@code ggml_half d}: the scale, f16. */
    static final int D_OFFSET = 0;
    /** {@code ggml_half s}: {@code d * sum(qs)}, f16. */
    static final int S_OFFSET = 2;
    /** {@code int8_t qs[32]}: element j is {@code qs[j]}. */
    static final int QS_OFFSET = 4;
    /** Bytes per block. */
    static final int BLOCK_BYTES = QS_OFFSET + BLOCK_SIZE;

    public static final Q8_1Codec INSTANCE = new Q8_1Codec();

    private Q8_1Codec() {}

    @Override
    public GgmlType type() {
        return GgmlType.Q8_1;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.Q8_1, count);
        for (int b = 0, blocks = count / BLOCK_SIZE; b < blocks; b++) {
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
        LittleEndian.checkWholeBlocks(GgmlType.Q8_1, count);
        for (int b = 0, blocks = count / BLOCK_SIZE; b < blocks; b++) {
            int in = srcIndex + b * BLOCK_SIZE;
            long block = dstOffset + (long) b * BLOCK_BYTES;
            float amax = 0.0f;
            for (int j = 0; j < BLOCK_SIZE; j++) {
                float a = Math.abs(src[in + j]);
                amax = amax > a ? amax : a;
            }
            float d = amax / ((1 << 7) - 1);
            float id = d != 0.0f ? 1.0f / d : 0.0f;
            dst.set(LittleEndian.SHORT, block + D_OFFSET, Float.floatToFloat16(d));
            int sum = 0;
            for (int j = 0; j < BLOCK_SIZE; j++) {
                byte q = (byte) (int) CFloat.roundf(src[in + j] * id);
                dst.set(LittleEndian.BYTE, block + QS_OFFSET + j, q);
                sum += q;   // the stored int8, as the C code sums y[i].qs[j]
            }
            dst.set(LittleEndian.SHORT, block + S_OFFSET, Float.floatToFloat16(sum * d));
        }
    }
}
