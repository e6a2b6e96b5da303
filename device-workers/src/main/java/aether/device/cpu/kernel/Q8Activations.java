package aether.device.cpu.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Activation rows quantized to 8-bit blocks of 32 (ggml's {@code quantize_row_q8_0_ref}), in a scratch layout made
 * for the dot kernels rather than ggml's interleaved block: per row, {@code blocks} f32 scales first, then
 * {@code blocks * 32} int8 quants, then the same quants widened to little-endian int16 (the Q8_0 kernel multiplies in
 * 16-bit lanes and takes them straight from memory, once per row instead of widening them for every weight row). The scale is rounded through f16 exactly as ggml stores it, so dot products see the
 * same scale llama.cpp sees; quantization itself uses the unrounded {@code 1/d} as ggml's reference does.
 */
final class Q8Activations {
    static final int BLOCK = 32;

    private Q8Activations() {}

    /** Bytes one row of {@code cols} elements takes. */
    static long rowBytes(int cols) {
        return (long) (cols / BLOCK) * (Float.BYTES + BLOCK + 2 * BLOCK);
    }

    /** Offset of the quants of a row, relative to the row start. */
    static long quantsOffset(int cols) {
        return (long) (cols / BLOCK) * Float.BYTES;
    }

    /** Offset of the int16 copy of the quants of a row, relative to the row start. */
    static long quants16Offset(int cols) {
        return (long) (cols / BLOCK) * (Float.BYTES + BLOCK);
    }

    /** Shorts per block in the int16 form of {@link #quantizeRowQ4}: 32 quants, then 16 correction lanes. */
    static final int Q4_LANES = 48;

    /**
     * The same quantization as {@link #quantizeRow}, written for the Q4_0 int16 kernels ({@link Q4_0Kernels}) as heap
     * arrays (C2 removes their range checks in the kernel loops, which it did not for segments): per block b,
     * {@code ax[axOff + 48b + j]} = quant j (j &lt; 32), then 16 lanes {@code c_k = -8·(q_k + q_{k+16}) ± 8192}
     * (+ on even k, - on odd k), and {@code dx[dxOff + b]} = the f16-rounded scale. The kernel computes per 16-bit
     * lane k {@code nib_k·q_k + nib_{k+16}·q_{k+16} + c_k}: the -8 of Q4_0 comes out exactly, and the ±8192 bias
     * makes every even lane non-negative (|(nib-8)·q| ≤ 1016, two of them ≤ 2032) so a pair of lanes folds into one
     * int with a mask, an arithmetic shift and an add, the biases cancelling. Blocks from {@code cols / 32} up to
     * {@code paddedBlocks} are padding: zero quants, bias only, scale 0.
     */
    /** A padding block of {@link #quantizeRowQ4}'s layout at {@code ax[a]}: zero quants, bias only, scale 0. */
    static void padQ4Block(short[] ax, int a, float[] dx, int dxIndex) {
        for (int j = 0; j < 32; j++) {
            ax[a + j] = 0;
        }
        for (int k = 0; k < 16; k++) {
            ax[a + 32 + k] = (short) ((k & 1) == 0 ? 8192 : -8192);
        }
        dx[dxIndex] = 0f;
    }

    static void quantizeRowQ4(MemorySegment x, long xOffset, int cols, int paddedBlocks, short[] ax, int axOff,
                              float[] dx, int dxOff) {
        int blocks = cols / BLOCK;
        for (int b = 0; b < paddedBlocks; b++) {
            int a = axOff + Q4_LANES * b;
            if (b >= blocks) {
                padQ4Block(ax, a, dx, dxOff + b);
                continue;
            }
            long xb = xOffset + (long) b * BLOCK * Float.BYTES;
            float amax = 0f;
            for (int j = 0; j < BLOCK; j++) {
                amax = Math.max(amax, Math.abs(x.get(BlockLayouts.F32, xb + (long) j * Float.BYTES)));
            }
            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            dx[dxOff + b] = Float.float16ToFloat(Float.floatToFloat16(d));
            for (int j = 0; j < BLOCK; j++) {
                float v = x.get(BlockLayouts.F32, xb + (long) j * Float.BYTES) * id;
                int r = Math.round(Math.abs(v));      // roundf: half away from zero, as quantizeRow
                ax[a + j] = (short) (v < 0 ? -r : r);
            }
            for (int k = 0; k < 16; k++) {
                ax[a + 32 + k] = (short) (-8 * (ax[a + k] + ax[a + k + 16]) + ((k & 1) == 0 ? 8192 : -8192));
            }
        }
    }

    /**
     * Q4_0's "- 8" per block of a {@link #quantizeRowQ4} row, for kernels that fold it in outside the integer sum
     * ({@link Q4_0Kernels#dotPlanar}): {@code cx[cxOff + b] = -8·Σ_j q_j} over the block's 32 quants (exact in f32,
     * |·| ≤ 8·32·127); 0 for padding blocks.
     */
    static void blockCorrections(short[] ax, int axOff, int paddedBlocks, float[] cx, int cxOff) {
        for (int b = 0; b < paddedBlocks; b++) {
            int a = axOff + Q4_LANES * b;
            int sum = 0;
            for (int j = 0; j < BLOCK; j++) {
                sum += ax[a + j];
            }
            cx[cxOff + b] = -8f * sum;
        }
    }

    /** Shorts per block in the {@link #planarWide} layout: the 32 quants only. */
    static final int Q4_WIDE_LANES = 32;

    /**
     * Rearranges a {@link #quantizeRowQ4} row for {@link Q4_0Kernels#dotPlanarWide}: per quad of blocks b..b+3, four
     * 32-lane vectors, each half the 16 quants that meet one nibble plane of a 64-byte load of the planar layout
     * (lanes 0-15 the pair (b, b+1), lanes 16-31 the pair (b+2, b+3)): {@code [q_b 0-15 | q_b+2 0-15]},
     * {@code [q_b 16-31 | q_b+2 16-31]}, {@code [q_b+1 0-15 | q_b+3 0-15]}, {@code [q_b+1 16-31 | q_b+3 16-31]}.
     * {@code paddedBlocks} is a multiple of 4 (the planar layout pads to 8).
     */
    static void planarWide(short[] ax, int axOff, int paddedBlocks, short[] wx, int wxOff) {
        for (int b = 0; b < paddedBlocks; b += 4) {
            int o = wxOff + Q4_WIDE_LANES * b;
            for (int plane = 0; plane < 4; plane++) {
                int lo = axOff + Q4_LANES * (b + plane / 2) + 16 * (plane % 2);   // block b or b+1, quants 0-15 or 16-31
                int hi = lo + 2 * Q4_LANES;                                       // the same of block b+2 or b+3
                System.arraycopy(ax, lo, wx, o + 32 * plane, 16);
                System.arraycopy(ax, hi, wx, o + 32 * plane + 16, 16);
            }
        }
    }

    /** Quantizes {@code cols} floats at {@code x[xOffset]} into the row at {@code dst[dstOffset]}. */
    static void quantizeRow(MemorySegment x, long xOffset, int cols, MemorySegment dst, long dstOffset) {
        int blocks = cols / BLOCK;
        long qs = dstOffset + quantsOffset(cols);
        long qs16 = dstOffset + quants16Offset(cols);
        for (int b = 0; b < blocks; b++) {
            long xb = xOffset + (long) b * BLOCK * Float.BYTES;
            float amax = 0f;
            for (int j = 0; j < BLOCK; j++) {
                amax = Math.max(amax, Math.abs(x.get(BlockLayouts.F32, xb + (long) j * Float.BYTES)));
            }
            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            dst.set(BlockLayouts.F32, dstOffset + (long) b * Float.BYTES, Float.float16ToFloat(Float.floatToFloat16(d)));
            long qb = qs + (long) b * BLOCK;
            for (int j = 0; j < BLOCK; j++) {
                float v = x.get(BlockLayouts.F32, xb + (long) j * Float.BYTES) * id;
                int r = Math.round(Math.abs(v));      // roundf: half away from zero
                dst.set(ValueLayout.JAVA_BYTE, qb + j, (byte) (v < 0 ? -r : r));
                dst.set(BlockLayouts.I16, qs16 + 2L * (b * BLOCK + j), (short) (v < 0 ? -r : r));
            }
        }
    }
    /** Elements per block of {@link #quantizeRowQ8K} (ggml's QK_K). */
    static final int K_BLOCK = 256;

    /**
     * ggml's {@code quantize_row_q8_K_ref}, the activation format llama.cpp's CPU backend pairs with the K-quants, as
     * heap arrays for {@link KQuantQ8Kernels}: per block b of 256, {@code max} = the element of largest magnitude
     * (sign kept), {@code iscale = -127/max}, quant {@code q = min(127, rint(iscale·x))} to {@code aq[aqOff + 256b + j]}
     * as a short (so the kernels multiply in 16-bit lanes without widening per weight row), {@code dk[dkOff + b] =
     * 1/iscale} (f32, not rounded to f16: Q8_K keeps a float scale), and the sum of each 32 quants to
     * {@code bs[bsOff + 8b + s]} (Q4_K/Q5_K apply their mins through it). Quants lie in [-127, 127]. An all-zero block
     * has scale 0; a block holding a NaN or an infinity gets a NaN scale, so the dot products of every row are NaN
     * (ggml's reference would lose a NaN: it never wins the max).
     */
    static void quantizeRowQ8K(MemorySegment x, long xOffset, int cols, short[] aq, int aqOff, float[] dk, int dkOff,
                               int[] bs, int bsOff) {
        for (int b = 0; b < cols / K_BLOCK; b++) {
            long xb = xOffset + (long) b * K_BLOCK * Float.BYTES;
            int a = aqOff + K_BLOCK * b;
            float max = 0f;
            float amax = 0f;
            float probe = 0f;   // x·0 summed: NaN iff some element is NaN or infinite
            for (int j = 0; j < K_BLOCK; j++) {
                float v = x.get(BlockLayouts.F32, xb + (long) j * Float.BYTES);
                float av = Math.abs(v);
                probe += v * 0f;
                if (av > amax) {
                    amax = av;
                    max = v;
                }
            }
            if (amax == 0f || probe != 0f) {
                for (int j = 0; j < K_BLOCK; j++) {
                    aq[a + j] = 0;
                }
                for (int s = 0; s < K_BLOCK / BLOCK; s++) {
                    bs[bsOff + 8 * b + s] = 0;
                }
                dk[dkOff + b] = probe != 0f ? Float.NaN : 0f;
                continue;
            }
            float iscale = -127f / max;
            for (int s = 0; s < K_BLOCK / BLOCK; s++) {
                int sum = 0;
                for (int j = s * BLOCK; j < s * BLOCK + BLOCK; j++) {
                    int q = Math.min(127, (int) Math.rint(iscale * x.get(BlockLayouts.F32, xb + (long) j * Float.BYTES)));
                    aq[a + j] = (short) q;
                    sum += q;
                }
                bs[bsOff + 8 * b + s] = sum;
            }
            dk[dkOff + b] = 1f / iscale;
        }
    }
}
