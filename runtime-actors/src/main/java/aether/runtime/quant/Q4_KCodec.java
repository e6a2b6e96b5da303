package aether.runtime.quant;

import static aether.runtime.quant.KQuantMath.QK_K;
import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.KQuantMath.makeQkx2Quants;
import static aether.runtime.quant.KQuantMath.minK4;
import static aether.runtime.quant.CFloat.nearestInt;
import static aether.runtime.quant.KQuantMath.packScaleMinK4;
import static aether.runtime.quant.LittleEndian.putF16;
import static aether.runtime.quant.LittleEndian.putU8;
import static aether.runtime.quant.KQuantMath.scaleK4;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * ggml's Q4_K: 256 elements as 8 sub-blocks of 32, each {@code x = d·sc·q - dmin·m} with 4-bit {@code q} and 6-bit
 * {@code sc}, {@code m}; 4.5 bits per weight. Stateless and thread-safe. Dequantization uses the Vector API unless
 * {@code -Daether.vector=false}; both paths give bit-identical results.
 *
 * <p>{@link #quantize} follows llama.cpp's reference quantizer bit for bit and, like it, does not check that the
 * input is finite: NaN or infinite input gives meaningless blocks. Magnitudes past what the format's f16 scales
 * hold (about 1e6 for Q2_K, more for the others) overflow to infinite scales, also as in llama.cpp.
 */
public final class Q4_KCodec implements BlockCodec {

    // block_q4_K (ggml-common.h), 144 bytes:
    /** ggml_half d: super-block scale for the 6-bit scales. */
    static final int D_OFFSET = 0;
    /** ggml_half dmin: super-block scale for the 6-bit mins. */
    static final int DMIN_OFFSET = 2;
    /** uint8 scales[K_SCALE_SIZE = 12]: 8 scales and 8 mins, 6 bits each ({@code get_scale_min_k4}). */
    static final int SCALES_OFFSET = 4;
    /** uint8 qs[128]: 4-bit quants; byte {@code 32·g + l} holds element {@code 64·g + l} (low) and +32 (high). */
    static final int QS_OFFSET = 16;
    static final int BLOCK_BYTES = 144;

    private final boolean vector;

    /** A codec that uses the Vector API when it is available and not disabled by {@code aether.vector=false}. */
    public Q4_KCodec() {
        this(Vectorization.ENABLED);
    }

    /** Forces the vector ({@code true}) or scalar path; tests compare the two. */
    Q4_KCodec(boolean vector) {
        this.vector = vector && KQuantVector.requireSupported();
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q4_K;
    }

    /** {@code dequantize_row_q4_K}: {@code y = (d·sc)·q - (dmin·m)}, each product rounded to float first. */
    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        int nb = count / QK_K;
        for (int i = 0; i < nb; i++) {
            long blk = srcOffset + (long) i * BLOCK_BYTES;
            if (vector) {
                KQuantVector.dequantizeQ4K(src, blk, dst, dstIndex + i * QK_K);
            } else {
                dequantizeBlock(src, blk, dst, dstIndex + i * QK_K);
            }
        }
    }

    static void dequantizeBlock(MemorySegment src, long blk, float[] dst, int y) {
        float d = f16(src, blk + D_OFFSET);
        float min = f16(src, blk + DMIN_OFFSET);
        long scales = blk + SCALES_OFFSET;
        long q = blk + QS_OFFSET;
        for (int is = 0; is < 8; is += 2, q += 32) {
            float d1 = d * scaleK4(src, scales, is);
            float m1 = min * minK4(src, scales, is);
            float d2 = d * scaleK4(src, scales, is + 1);
            float m2 = min * minK4(src, scales, is + 1);
            for (int l = 0; l < 32; ++l) {
                dst[y++] = d1 * (u8(src, q + l) & 0xF) - m1;
            }
            for (int l = 0; l < 32; ++l) {
                dst[y++] = d2 * (u8(src, q + l) >> 4) - m2;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /**
     * {@code quantize_row_q4_K_ref}: per 32-element sub-block a weighted ({@code rms + |x|}) scale/min search, then
     * 6-bit scales and mins relative to their maxima, then requantization with the stored scales.
     */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(type(), count);
        quantizeKx(src, srcIndex, count, dst, dstOffset, 15, -1.f, 0.1f, 20, BLOCK_BYTES);
    }

    /**
     * The shared body of {@code quantize_row_q4_K_ref} and {@code quantize_row_q5_K_ref} (they differ in
     * {@code nmax}, the search grid and where the quants go). For Q5_K the caller packs {@code qh}/{@code qs}.
     */
    static void quantizeKx(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset, int nmax,
            float rmin, float rdelta, int nstep, int blockBytes) {
        int nb = count / QK_K;
        byte[] L = new byte[QK_K];
        byte[] laux = new byte[32];
        float[] weights = new float[32];
        float[] mins = new float[QK_K / 32];
        float[] scales = new float[QK_K / 32];
        byte[] packed = new byte[KQuantMath.K_SCALE_SIZE];
        int x = srcIndex;
        for (int i = 0; i < nb; i++, x += QK_K) {
            long blk = dstOffset + (long) i * blockBytes;
            float maxScale = 0;
            float maxMin = 0;
            for (int j = 0; j < QK_K / 32; ++j) {
                float sumX2 = 0;
                for (int l = 0; l < 32; ++l) {
                    sumX2 += src[x + 32 * j + l] * src[x + 32 * j + l];
                }
                float avX = (float) Math.sqrt(sumX2 / 32);
                for (int l = 0; l < 32; ++l) {
                    weights[l] = avX + Math.abs(src[x + 32 * j + l]);
                }
                scales[j] = makeQkx2Quants(32, nmax, src, x + 32 * j, weights, L, 32 * j, mins, j, laux,
                        rmin, rdelta, nstep, false);
                if (scales[j] > maxScale) {
                    maxScale = scales[j];
                }
                if (mins[j] > maxMin) {
                    maxMin = mins[j];
                }
            }
            float invScale = maxScale > 0 ? 63.f / maxScale : 0.f;
            float invMin = maxMin > 0 ? 63.f / maxMin : 0.f;
            java.util.Arrays.fill(packed, (byte) 0);
            for (int j = 0; j < QK_K / 32; ++j) {
                int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xFF); // uint8_t ls = nearest_int(...)
                int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xFF);
                packScaleMinK4(packed, j, ls, lm);
            }
            float d = putF16(dst, blk + D_OFFSET, maxScale / 63.f);
            float dmin = putF16(dst, blk + DMIN_OFFSET, maxMin / 63.f);
            for (int j = 0; j < packed.length; j++) {
                putU8(dst, blk + SCALES_OFFSET + j, packed[j]);
            }
            for (int j = 0; j < QK_K / 32; ++j) {
                float dj = d * scaleK4(packed, j);
                if (dj == 0) {
                    continue;
                }
                float dm = dmin * minK4(packed, j);
                for (int ii = 0; ii < 32; ++ii) {
                    int l = nearestInt((src[x + 32 * j + ii] + dm) / dj);
                    L[32 * j + ii] = (byte) Math.max(0, Math.min(nmax, l));
                }
            }
            if (nmax == 15) {
                long q = blk + QS_OFFSET;
                for (int j = 0; j < QK_K; j += 64, q += 32) {
                    for (int l = 0; l < 32; ++l) {
                        putU8(dst, q + l, L[j + l] | (L[j + l + 32] << 4));
                    }
                }
            } else {
                Q5_KCodec.packQuants(L, dst, blk);
            }
        }
    }
}
