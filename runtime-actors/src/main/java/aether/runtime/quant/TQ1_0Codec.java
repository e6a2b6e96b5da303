package aether.runtime.quant;

import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * TQ1_0: 256 ternary weights {-1, 0, +1} times one f16 scale, packed five trits per byte (ggml-common.h
 * {@code block_tq1_0}, 54 bytes). A byte {@code b} holds trits as a fixed-point fraction {@code b / 256} of
 * {@code 3^5}: trit {@code n} is {@code ((uint8)(b * 3^n) * 3) >> 8}, decoded to {@code (trit - 1) * d}.
 *
 * <p>Element order: {@code qs[0..31]} give elements {@code 32n + m} (trit n of byte m) for the first 160, then
 * {@code qs[32..47]} give the next 80 in groups of 16, then the four {@code qh} bytes hold four trits each for the
 * last 16 (trit {@code n} of {@code qh[j]} is element {@code 240 + 4n + j}). Stateless and thread-safe.
 */
public final class TQ1_0Codec implements BlockCodec {

    /** {@code uint8_t qs[48]}: five trits per byte. */
    static final int QS_OFFSET = 0;
    /** {@code uint8_t qh[4]}: four trits per byte. */
    static final int QH_OFFSET = 48;
    /** {@code ggml_half d}: the block scale. */
    static final int D_OFFSET = 52;
    static final int BLOCK_BYTES = 54;
    static final int BLOCK_SIZE = 256;

    private static final int[] POW3 = {1, 3, 9, 27, 81, 243};

    @Override
    public GgmlType type() {
        return GgmlType.TQ1_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        LittleEndian.checkWholeBlocks(GgmlType.TQ1_0, count);
        long block = srcOffset;
        for (int out = dstIndex, end = dstIndex + count; out < end; block += BLOCK_BYTES) {
            float d = f16(src, block + D_OFFSET);
            for (int n = 0; n < 5; n++) {
                for (int m = 0; m < 32; m++) {
                    dst[out++] = (float) (trit(u8(src, block + QS_OFFSET + m), n) - 1) * d;
                }
            }
            for (int n = 0; n < 5; n++) {
                for (int m = 0; m < 16; m++) {
                    dst[out++] = (float) (trit(u8(src, block + QS_OFFSET + 32 + m), n) - 1) * d;
                }
            }
            for (int n = 0; n < 4; n++) {
                for (int j = 0; j < 4; j++) {
                    dst[out++] = (float) (trit(u8(src, block + QH_OFFSET + j), n) - 1) * d;
                }
            }
        }
    }

    /** Trit {@code n} of a packed byte: {@code (uint8_t)(b * 3^n)} times 3, top byte (0, 1 or 2). */
    private static int trit(int b, int n) {
        int q = (b * POW3[n]) & 0xFF;
        return (q * 3) >>> 8;
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /** llama.cpp's {@code quantize_row_tq1_0_ref}: scale = max |x|, trits = round(x / scale) + 1. */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(GgmlType.TQ1_0, count);
        long block = dstOffset;
        for (int x = srcIndex, end = srcIndex + count; x < end; block += BLOCK_BYTES) {
            float amax = 0.0f;
            for (int j = 0; j < BLOCK_SIZE; j++) {
                amax = Math.max(amax, Math.abs(src[x + j]));
            }
            float d = amax;
            float id = d != 0 ? 1.0f / d : 0.0f;
            LittleEndian.putF16(dst, block + D_OFFSET, d);
            for (int m = 0; m < 32; m++) {
                dst.set(LittleEndian.BYTE, block + QS_OFFSET + m, pack(src, x + m, 32, 5, id, false));
            }
            x += 5 * 32;
            for (int m = 0; m < 16; m++) {
                dst.set(LittleEndian.BYTE, block + QS_OFFSET + 32 + m, pack(src, x + m, 16, 5, id, false));
            }
            x += 5 * 16;
            for (int j = 0; j < 4; j++) {
                dst.set(LittleEndian.BYTE, block + QH_OFFSET + j, pack(src, x + j, 4, 4, id, true));
            }
            x += 4 * 4;
        }
    }

    /**
     * Packs {@code n} trits {@code src[at + k*stride]} base 3 (first trit most significant), as ggml does in uint8
     * arithmetic, then stores the ceiling of {@code q * 256 / 243} so that decoding by multiplication recovers them.
     */
    private static byte pack(float[] src, int at, int stride, int n, float id, boolean shiftOnce) {
        int q = 0;
        for (int k = 0; k < n; k++) {
            int xi = IqMath.lroundf(src[at + k * stride] * id) + 1;
            q = (q * 3 + xi) & 0xFF;
        }
        if (shiftOnce) {
            q = (q * 3) & 0xFF; // four trits: move the first one to the most significant of five
        }
        q = ((q * 256 + (243 - 1)) / 243) & 0xFF;
        return (byte) q;
    }
}
