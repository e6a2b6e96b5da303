package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * MXFP4 (OCP microscaling): 32 E2M1 values sharing one E8M0 power-of-two scale (ggml-common.h
 * {@code block_mxfp4}, 17 bytes). ggml stores the E2M1 values doubled as integers ({@link #KVALUES}) and halves
 * the scale instead ({@link IqMath#e8m0ToFloatHalf}), so element {@code j < 16} is
 * {@code KVALUES[qs[j] & 15] * 2^(e-128)} and element {@code j + 16} uses the high nibble. Exponent bytes up to 252
 * always decode to finite values; above that the larger codes overflow to ±Inf in float, as they do in ggml (which
 * does not reserve 255 for NaN). Stateless and thread-safe.
 */
public final class MXFP4Codec implements BlockCodec {

    /** {@code uint8_t e}: the E8M0 shared exponent. */
    static final int E_OFFSET = 0;
    /** {@code uint8_t qs[16]}: two E2M1 codes per byte. */
    static final int QS_OFFSET = 1;
    static final int BLOCK_BYTES = 17;
    static final int BLOCK_SIZE = 32;

    /** ggml-common.h {@code kvalues_mxfp4}: E2M1 values times two, indexed by the 4-bit code (bit 3 = sign). */
    static final byte[] KVALUES = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

    @Override
    public GgmlType type() {
        return GgmlType.MXFP4;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.MXFP4, count);
        long block = srcOffset;
        for (int out = dstIndex, end = dstIndex + count; out < end; out += BLOCK_SIZE, block += BLOCK_BYTES) {
            float d = IqMath.e8m0ToFloatHalf(u8(src, block + E_OFFSET));
            for (int j = 0; j < 16; j++) {
                int q = u8(src, block + QS_OFFSET + j);
                dst[out + j] = KVALUES[q & 0xF] * d;
                dst[out + j + 16] = KVALUES[q >>> 4] * d;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /**
     * llama.cpp's {@code quantize_row_mxfp4_ref}: the shared exponent is {@code floor(log2f(amax)) - 2 + 127} (so the
     * largest magnitude lands near code 6 = 3.0 of the E2M1 range), then each value takes the nearest code, the
     * lowest index winning ties.
     */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(GgmlType.MXFP4, count);
        long block = dstOffset;
        for (int x = srcIndex, end = srcIndex + count; x < end; x += BLOCK_SIZE, block += BLOCK_BYTES) {
            float amax = 0.0f;
            for (int j = 0; j < BLOCK_SIZE; j++) {
                if (amax < Math.abs(src[x + j])) {
                    amax = Math.abs(src[x + j]);
                }
            }
            // (uint8_t)(floorf(log2f(amax)) - 2 + 127): log2f is rounded to float before the floor, which matters
            // just below a power of two; a tiny amax makes the C value negative, which wraps modulo 256 on x86.
            int e = amax > 0.0f ? ((int) Math.floor(log2f(amax)) - 2 + 127) & 0xFF : 0;
            float d = IqMath.e8m0ToFloatHalf(e);
            dst.set(LittleEndian.BYTE, block + E_OFFSET, (byte) e);
            for (int j = 0; j < 16; j++) {
                int x0 = bestIndex(src[x + j], d);
                int x1 = bestIndex(src[x + 16 + j], d);
                dst.set(LittleEndian.BYTE, block + QS_OFFSET + j, (byte) (x0 | x1 << 4));
            }
        }
    }

    /** log2 rounded to float, as glibc's log2f (correctly rounded for all but astronomically rare inputs). */
    private static float log2f(float x) {
        return (float) (Math.log(x) / Math.log(2.0));
    }

    private static int bestIndex(float x, float e) {
        int best = 0;
        float bestErr = Math.abs(KVALUES[0] * e - x);
        for (int i = 1; i < 16; i++) {
            float err = Math.abs(KVALUES[i] * e - x);
            if (err < bestErr) {
                best = i;
                bestErr = err;
            }
        }
        return best;
    }
}
