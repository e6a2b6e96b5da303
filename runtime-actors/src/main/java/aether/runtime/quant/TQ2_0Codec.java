package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * TQ2_0: 256 ternary weights {-1, 0, +1} times one f16 scale, two bits each (ggml-common.h {@code block_tq2_0}, 66
 * bytes). Code {@code k} (0..3) decodes to {@code (k - 1) * d}; the quantizer only writes 0..2, but 3 (= +2d) is
 * decoded as ggml does. Element {@code 128*h + 32*l + m} is bits {@code 2l..2l+1} of {@code qs[32*h + m]}.
 * Stateless and thread-safe.
 */
public final class TQ2_0Codec implements BlockCodec {

    /** {@code uint8_t qs[64]}: four 2-bit codes per byte. */
    static final int QS_OFFSET = 0;
    /** {@code ggml_half d}: the block scale, after the codes. */
    static final int D_OFFSET = 64;
    static final int BLOCK_BYTES = 66;
    static final int BLOCK_SIZE = 256;

    @Override
    public GgmlType type() {
        return GgmlType.TQ2_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.TQ2_0, count);
        long block = srcOffset;
        for (int out = dstIndex, end = dstIndex + count; out < end; block += BLOCK_BYTES) {
            float d = f16(src, block + D_OFFSET);
            for (int j = 0; j < 64; j += 32) {
                for (int l = 0; l < 4; l++) {
                    for (int m = 0; m < 32; m++) {
                        int q = (u8(src, block + QS_OFFSET + j + m) >>> (l * 2)) & 3;
                        dst[out++] = (float) (q - 1) * d;
                    }
                }
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /** llama.cpp's {@code quantize_row_tq2_0_ref}: scale = max |x|, codes = round(x / scale) + 1. */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(GgmlType.TQ2_0, count);
        long block = dstOffset;
        for (int x = srcIndex, end = srcIndex + count; x < end; block += BLOCK_BYTES) {
            float amax = 0.0f;
            for (int j = 0; j < BLOCK_SIZE; j++) {
                amax = Math.max(amax, Math.abs(src[x + j]));
            }
            float d = amax;
            float id = d != 0 ? 1.0f / d : 0.0f;
            LittleEndian.putF16(dst, block + D_OFFSET, d);
            for (int j = 0; j < 64; j += 32) {
                for (int m = 0; m < 32; m++) {
                    int q = 0;
                    for (int n = 0; n < 4; n++) {
                        int xi = IqMath.lroundf(src[x + m + n * 32] * id) + 1;
                        q += (xi & 3) << (2 * n);
                    }
                    dst.set(LittleEndian.BYTE, block + QS_OFFSET + j + m, (byte) q);
                }
                x += 4 * 32;
            }
        }
    }
}
