package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.FLOAT;
import static aether.runtime.quant.LittleEndian.SHORT;
import static aether.runtime.quant.KQuantMath.QK_K;
import static aether.runtime.quant.CFloat.nearestInt;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * ggml's Q8_K, the activation format K-quant dot products use: 256 int8 quants with one f32 scale and the sums of
 * each 16 quants ({@code bsums}, which let a dot product apply the K-quant mins without touching the quants).
 * Stateless and thread-safe.
 *
 * <p>{@link #quantize} follows llama.cpp's reference quantizer and, like it, does not check that the input is
 * finite: NaN or infinite input gives meaningless blocks.
 */
public final class Q8_KCodec implements BlockCodec {

    // block_q8_K (ggml-common.h), 292 bytes:
    /** float d: scale (f32, not f16). */
    static final int D_OFFSET = 0;
    /** int8 qs[256]: quants. */
    static final int QS_OFFSET = 4;
    /** int16 bsums[16]: {@code bsums[j] = sum(qs[16·j .. 16·j+15])}. */
    static final int BSUMS_OFFSET = 260;
    static final int BLOCK_BYTES = 292;

    public Q8_KCodec() {}

    @Override
    public GgmlType type() {
        return GgmlType.Q8_K;
    }

    /** {@code dequantize_row_q8_K}: {@code y = d·q}. */
    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        int nb = count / QK_K;
        int y = dstIndex;
        for (int i = 0; i < nb; i++) {
            long blk = srcOffset + (long) i * BLOCK_BYTES;
            float d = src.get(FLOAT, blk + D_OFFSET);
            for (int j = 0; j < QK_K; ++j) {
                dst[y++] = d * src.get(ValueLayout.JAVA_BYTE, blk + QS_OFFSET + j);
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /**
     * {@code quantize_row_q8_K_ref}: {@code d = max/-127} with {@code max} the element of largest magnitude, so
     * that element maps to -127 (the scale's sign is chosen to make that exact), others clamped to 127. An all-zero
     * block gets {@code d = 0} and zero bsums (ggml leaves its bsums untouched there; zero is their true value).
     */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(type(), count);
        int nb = count / QK_K;
        int x = srcIndex;
        for (int i = 0; i < nb; i++, x += QK_K) {
            long blk = dstOffset + (long) i * BLOCK_BYTES;
            float max = 0;
            float amax = 0;
            for (int j = 0; j < QK_K; ++j) {
                float ax = Math.abs(src[x + j]);
                if (ax > amax) {
                    amax = ax;
                    max = src[x + j];
                }
            }
            if (amax == 0) {
                dst.asSlice(blk, BLOCK_BYTES).fill((byte) 0);
                continue;
            }
            float iscale = -127.f / max;
            for (int j = 0; j < QK_K / 16; ++j) {
                int sum = 0;
                for (int ii = 0; ii < 16; ++ii) {
                    byte q = (byte) Math.min(127, nearestInt(iscale * src[x + 16 * j + ii]));
                    dst.set(ValueLayout.JAVA_BYTE, blk + QS_OFFSET + 16 * j + ii, q);
                    sum += q;
                }
                dst.set(SHORT, blk + BSUMS_OFFSET + 2L * j, (short) sum);
            }
            dst.set(FLOAT, blk + D_OFFSET, 1 / iscale);
        }
    }
}
