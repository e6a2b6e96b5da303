package aether.runtime.quant;

import static aether.runtime.quant.KQuantMath.QK_K;
import static aether.runtime.quant.LittleEndian.f16;
import static aether.runtime.quant.KQuantMath.makeQ3Quants;
import static aether.runtime.quant.CFloat.nearestInt;
import static aether.runtime.quant.LittleEndian.putF16;
import static aether.runtime.quant.LittleEndian.putU8;
import static aether.runtime.quant.LittleEndian.u8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * ggml's Q3_K: 256 elements as 16 sub-blocks of 16, each {@code x = d·(sc-32)·(q-4)} with a 3-bit {@code q} (2 low
 * bits in {@code qs}, the high bit in {@code hmask}) and a 6-bit {@code sc}; 3.4375 bits per weight. Stateless and
 * thread-safe.
 *
 * <p>{@link #quantize} follows llama.cpp's reference quantizer bit for bit and, like it, does not check that the
 * input is finite: NaN or infinite input gives meaningless blocks. Magnitudes past what the format's f16 scales
 * hold (about 1e6 for Q2_K, more for the others) overflow to infinite scales, also as in llama.cpp.
 */
public final class Q3_KCodec implements BlockCodec {

    // block_q3_K (ggml-common.h), 110 bytes:
    /** uint8 hmask[32]: bit {@code k} of byte {@code l} is the high bit of element {@code 32·k + l}. */
    static final int HMASK_OFFSET = 0;
    /** uint8 qs[64]: low 2 bits of the quants, packed as in Q2_K. */
    static final int QS_OFFSET = 32;
    /**
     * uint8 scales[12]: 16 6-bit scales biased by 32; low nibbles in bytes 0..7 (j and j+8 share byte j%8), high
     * 2-bit pairs in bytes 8..11 (scale j at byte 8 + j%4, bits 2·(j/4)).
     */
    static final int SCALES_OFFSET = 96;
    /** ggml_half d: super-block scale. */
    static final int D_OFFSET = 108;
    static final int BLOCK_BYTES = 110;

    public Q3_KCodec() {}

    @Override
    public GgmlType type() {
        return GgmlType.Q3_K;
    }

    /** The signed 6-bit scale of sub-block {@code j} (ggml's {@code aux} shuffle, one scale at a time). */
    private static int scale(MemorySegment s, long scales, int j) {
        int low = j < 8 ? u8(s, scales + j) & 0xF : u8(s, scales + j - 8) >> 4;
        int high = (u8(s, scales + 8 + j % 4) >> (2 * (j / 4))) & 3;
        return (low | (high << 4)) - 32;
    }

    /** {@code dequantize_row_q3_K}. */
    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        int nb = count / QK_K;
        int y = dstIndex;
        for (int i = 0; i < nb; i++) {
            long blk = srcOffset + (long) i * BLOCK_BYTES;
            float dAll = f16(src, blk + D_OFFSET);
            long q = blk + QS_OFFSET;
            long hm = blk + HMASK_OFFSET;
            int m = 1;
            int is = 0;
            for (int n = 0; n < QK_K; n += 128) {
                for (int shift = 0; shift < 8; shift += 2) {
                    float dl = dAll * scale(src, blk + SCALES_OFFSET, is++);
                    for (int l = 0; l < 16; ++l) {
                        int v = ((u8(src, q + l) >> shift) & 3) - ((u8(src, hm + l) & m) != 0 ? 0 : 4);
                        dst[y++] = dl * v;
                    }
                    dl = dAll * scale(src, blk + SCALES_OFFSET, is++);
                    for (int l = 0; l < 16; ++l) {
                        int v = ((u8(src, q + l + 16) >> shift) & 3) - ((u8(src, hm + l + 16) & m) != 0 ? 0 : 4);
                        dst[y++] = dl * v;
                    }
                    m <<= 1;
                }
                q += 32;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    /** {@code quantize_row_q3_K_ref}: x²-weighted symmetric scales per sub-block, then 6-bit scales. */
    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        LittleEndian.checkWholeBlocks(type(), count);
        int nb = count / QK_K;
        byte[] L = new byte[QK_K];
        float[] scales = new float[QK_K / 16];
        byte[] packed = new byte[12];
        int x = srcIndex;
        for (int i = 0; i < nb; i++, x += QK_K) {
            long blk = dstOffset + (long) i * BLOCK_BYTES;
            float maxScale = 0;
            float amax = 0;
            for (int j = 0; j < QK_K / 16; ++j) {
                scales[j] = makeQ3Quants(16, 4, src, x + 16 * j, L, 16 * j, true);
                float scale = Math.abs(scales[j]);
                if (scale > amax) {
                    amax = scale;
                    maxScale = scales[j];
                }
            }
            java.util.Arrays.fill(packed, (byte) 0);
            float d;
            if (maxScale != 0) {
                float iscale = -32.f / maxScale;
                for (int j = 0; j < QK_K / 16; ++j) {
                    byte l8 = (byte) nearestInt(iscale * scales[j]); // int8_t l = nearest_int(...)
                    int l = Math.max(-32, Math.min(31, l8)) + 32;
                    if (j < 8) {
                        packed[j] = (byte) (l & 0xF);
                    } else {
                        packed[j - 8] |= (byte) ((l & 0xF) << 4);
                    }
                    l >>= 4;
                    packed[j % 4 + 8] |= (byte) (l << (2 * (j / 4)));
                }
                d = putF16(dst, blk + D_OFFSET, 1 / iscale);
            } else {
                d = putF16(dst, blk + D_OFFSET, 0.f);
            }
            for (int j = 0; j < 12; j++) {
                putU8(dst, blk + SCALES_OFFSET + j, packed[j]);
            }
            for (int j = 0; j < QK_K / 16; ++j) {
                int lo = j < 8 ? packed[j] & 0xF : (packed[j - 8] & 0xFF) >> 4;
                int sc = (lo | (((packed[8 + j % 4] & 0xFF) >> (2 * (j / 4))) & 3) << 4) - 32;
                float dj = d * sc;
                if (dj == 0) {
                    continue;
                }
                for (int ii = 0; ii < 16; ++ii) {
                    int l = nearestInt(src[x + 16 * j + ii] / dj);
                    L[16 * j + ii] = (byte) (Math.max(-4, Math.min(3, l)) + 4);
                }
            }
            // The high bit of the first 32 quants goes to bit 0 of hmask[0..31], the next 32 to bit 1, etc.
            long hmask = blk + HMASK_OFFSET;
            for (int m = 0; m < QK_K / 8; m++) {
                int h = 0;
                for (int k = 0; k < 8; k++) {
                    int j = 32 * k + m;
                    if (L[j] > 3) {
                        h |= 1 << k;
                        L[j] -= 4;
                    }
                }
                putU8(dst, hmask + m, h);
            }
            KQuantMath.pack2Bit(L, dst, blk + QS_OFFSET);
        }
    }
}
