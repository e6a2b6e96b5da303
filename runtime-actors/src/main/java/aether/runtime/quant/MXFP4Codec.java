package aether.runtime.quant;

import static aether.runtime.quant.IqMath.u8;

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
        IqMath.checkCount(GgmlType.MXFP4, count);
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
}
