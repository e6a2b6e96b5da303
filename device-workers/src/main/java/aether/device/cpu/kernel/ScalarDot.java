package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.F32;
import static aether.device.cpu.kernel.BlockLayouts.I16;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Scalar references of every dot kernel: one weight row (at {@code w[wOff]}, {@code cols} elements in its block
 * format) times one activation row. They are the {@code -Daether.vector=false} path and what the vector kernels are
 * tested against; they favour obviously-right over fast. Float-activation variants take f32 {@code x}; the
 * {@code q8} variants take a row in {@link Q8Activations}' layout and sum int8×int quants per block exactly, in int,
 * as ggml's {@code ggml_vec_dot_*_q8_0_generic} do.
 */
final class ScalarDot {
    private ScalarDot() {}

    static float f32(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int i = 0; i < cols; i++) {
            sum += w.get(F32, wOff + 4L * i) * x.get(F32, xOff + 4L * i);
        }
        return sum;
    }

    static float f16(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int i = 0; i < cols; i++) {
            sum += Float.float16ToFloat(w.get(I16, wOff + 2L * i)) * x.get(F32, xOff + 4L * i);
        }
        return sum;
    }

    static float bf16(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int i = 0; i < cols; i++) {
            sum += Float.intBitsToFloat(w.get(I16, wOff + 2L * i) << 16) * x.get(F32, xOff + 4L * i);
        }
        return sum;
    }

    static float q8_0(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q8_0_BYTES;
            long xb = xOff + (long) b * 32 * Float.BYTES;
            float s = 0f;
            for (int j = 0; j < 32; j++) {
                s += w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q8_0_QS + j) * x.get(F32, xb + 4L * j);
            }
            sum += BlockLayouts.f16(w, blk) * s;
        }
        return sum;
    }

    static float q4_0(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q4_0_BYTES;
            long xb = xOff + (long) b * 32 * Float.BYTES;
            float s = 0f;
            for (int j = 0; j < 16; j++) {
                int q = w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q4_0_QS + j) & 0xFF;
                s += ((q & 0xF) - 8) * x.get(F32, xb + 4L * j) + ((q >>> 4) - 8) * x.get(F32, xb + 4L * (j + 16));
            }
            sum += BlockLayouts.f16(w, blk) * s;
        }
        return sum;
    }

    static float q8_0Q8(MemorySegment w, long wOff, MemorySegment xq, long xqOff, int cols) {
        int blocks = cols / 32;
        long qs = xqOff + Q8Activations.quantsOffset(cols);
        float sum = 0f;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q8_0_BYTES;
            int isum = 0;
            for (int j = 0; j < 32; j++) {
                isum += w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q8_0_QS + j)
                        * xq.get(ValueLayout.JAVA_BYTE, qs + b * 32L + j);
            }
            sum += isum * (BlockLayouts.f16(w, blk) * xq.get(F32, xqOff + 4L * b));
        }
        return sum;
    }

    static float q4_0Q8(MemorySegment w, long wOff, MemorySegment xq, long xqOff, int cols) {
        int blocks = cols / 32;
        long qs = xqOff + Q8Activations.quantsOffset(cols);
        float sum = 0f;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q4_0_BYTES;
            int isum = 0;
            for (int j = 0; j < 16; j++) {
                int q = w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q4_0_QS + j) & 0xFF;
                isum += ((q & 0xF) - 8) * xq.get(ValueLayout.JAVA_BYTE, qs + b * 32L + j)
                        + ((q >>> 4) - 8) * xq.get(ValueLayout.JAVA_BYTE, qs + b * 32L + j + 16);
            }
            sum += isum * (BlockLayouts.f16(w, blk) * xq.get(F32, xqOff + 4L * b));
        }
        return sum;
    }

    /**
     * {@link #q4_0Q8} over a {@link PackedWeights.Layout#Q4_0_PLANAR} row at {@code p[rowOff]} with {@code paddedBlocks}
     * blocks: element j of block b is nibble {@code j / 16 + 2·(b % 2)} of 16-bit lane {@code j % 16} of the row's pair
     * {@code b / 2}; the sums run in the same order as the ggml-layout reference.
     */
    static float q4_0PlanarQ8(MemorySegment p, long rowOff, int paddedBlocks, MemorySegment xq, long xqOff, int cols) {
        int blocks = cols / 32;
        long qs = xqOff + Q8Activations.quantsOffset(cols);
        long planes = rowOff + 2L * paddedBlocks;
        float sum = 0f;
        for (int b = 0; b < blocks; b++) {
            int isum = 0;
            for (int j = 0; j < 32; j++) {
                int lane = p.get(I16, planes + 32L * (b / 2) + 2L * (j % 16)) & 0xFFFF;
                int q = (lane >>> (4 * (j / 16 + 2 * (b % 2)))) & 0xF;
                isum += (q - 8) * xq.get(ValueLayout.JAVA_BYTE, qs + b * 32L + j);
            }
            sum += isum * (BlockLayouts.f16(p, rowOff + 2L * b) * xq.get(F32, xqOff + 4L * b));
        }
        return sum;
    }

    static float q4_1(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q4_1_BYTES;
            long xb = xOff + (long) b * 32 * Float.BYTES;
            float d = BlockLayouts.f16(w, blk);
            float m = BlockLayouts.f16(w, blk + BlockLayouts.Q4_1_M);
            for (int j = 0; j < 16; j++) {
                int q = w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q4_1_QS + j) & 0xFF;
                sum += (d * (q & 0xF) + m) * x.get(F32, xb + 4L * j) + (d * (q >>> 4) + m) * x.get(F32, xb + 4L * (j + 16));
            }
        }
        return sum;
    }

    static float q5_0(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q5_0_BYTES;
            long xb = xOff + (long) b * 32 * Float.BYTES;
            float d = BlockLayouts.f16(w, blk);
            int qh = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + BlockLayouts.Q5_0_QH);
            for (int j = 0; j < 16; j++) {
                int q = w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q5_0_QS + j) & 0xFF;
                int q0 = ((q & 0xF) | (((qh >>> j) & 1) << 4)) - 16;
                int q1 = ((q >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16;
                sum += d * q0 * x.get(F32, xb + 4L * j) + d * q1 * x.get(F32, xb + 4L * (j + 16));
            }
        }
        return sum;
    }

    static float q5_1(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q5_1_BYTES;
            long xb = xOff + (long) b * 32 * Float.BYTES;
            float d = BlockLayouts.f16(w, blk);
            float m = BlockLayouts.f16(w, blk + BlockLayouts.Q5_1_M);
            int qh = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + BlockLayouts.Q5_1_QH);
            for (int j = 0; j < 16; j++) {
                int q = w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q5_1_QS + j) & 0xFF;
                int q0 = (q & 0xF) | (((qh >>> j) & 1) << 4);
                int q1 = (q >>> 4) | (((qh >>> (j + 16)) & 1) << 4);
                sum += (d * q0 + m) * x.get(F32, xb + 4L * j) + (d * q1 + m) * x.get(F32, xb + 4L * (j + 16));
            }
        }
        return sum;
    }

    static float q4_K(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q4_K_BYTES;
            long xb = xOff + (long) b * 256 * Float.BYTES;
            float d = BlockLayouts.f16(w, blk);
            float dmin = BlockLayouts.f16(w, blk + BlockLayouts.Q4_K_DMIN);
            long sc = blk + BlockLayouts.Q4_K_SCALES;
            for (int g = 0; g < 4; g++) {              // 4 groups of 64: 32 bytes, low nibbles then high nibbles
                float d1 = d * BlockLayouts.q4kScale(w, sc, 2 * g);
                float m1 = dmin * BlockLayouts.q4kMin(w, sc, 2 * g);
                float d2 = d * BlockLayouts.q4kScale(w, sc, 2 * g + 1);
                float m2 = dmin * BlockLayouts.q4kMin(w, sc, 2 * g + 1);
                for (int l = 0; l < 32; l++) {
                    int q = w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q4_K_QS + 32L * g + l) & 0xFF;
                    sum += (d1 * (q & 0xF) - m1) * x.get(F32, xb + 4L * (64 * g + l))
                            + (d2 * (q >>> 4) - m2) * x.get(F32, xb + 4L * (64 * g + 32 + l));
                }
            }
        }
        return sum;
    }

    static float q6_K(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q6_K_BYTES;
            float d = BlockLayouts.f16(w, blk + BlockLayouts.Q6_K_D);
            for (int h = 0; h < 2; h++) {
                long ql = blk + 64L * h;
                long qh = blk + BlockLayouts.Q6_K_QH + 32L * h;
                long sc = blk + BlockLayouts.Q6_K_SCALES + 8L * h;
                long xb = xOff + (long) (b * 256 + h * 128) * Float.BYTES;
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int lo = w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF;
                    int hi = w.get(ValueLayout.JAVA_BYTE, ql + l + 32) & 0xFF;
                    int hb = w.get(ValueLayout.JAVA_BYTE, qh + l) & 0xFF;
                    int q1 = ((lo & 0xF) | ((hb & 3) << 4)) - 32;
                    int q2 = ((hi & 0xF) | (((hb >> 2) & 3) << 4)) - 32;
                    int q3 = ((lo >> 4) | (((hb >> 4) & 3) << 4)) - 32;
                    int q4 = ((hi >> 4) | (((hb >> 6) & 3) << 4)) - 32;
                    sum += d * w.get(ValueLayout.JAVA_BYTE, sc + is) * q1 * x.get(F32, xb + 4L * l)
                            + d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2) * q2 * x.get(F32, xb + 4L * (l + 32))
                            + d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4) * q3 * x.get(F32, xb + 4L * (l + 64))
                            + d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6) * q4 * x.get(F32, xb + 4L * (l + 96));
                }
            }
        }
        return sum;
    }

    static float q5_K(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q5_K_BYTES;
            long xb = xOff + (long) b * 256 * Float.BYTES;
            float d = BlockLayouts.f16(w, blk);
            float dmin = BlockLayouts.f16(w, blk + BlockLayouts.Q4_K_DMIN);
            long sc = blk + BlockLayouts.Q4_K_SCALES;
            for (int g = 0; g < 4; g++) {
                float d1 = d * BlockLayouts.q4kScale(w, sc, 2 * g);
                float m1 = dmin * BlockLayouts.q4kMin(w, sc, 2 * g);
                float d2 = d * BlockLayouts.q4kScale(w, sc, 2 * g + 1);
                float m2 = dmin * BlockLayouts.q4kMin(w, sc, 2 * g + 1);
                for (int l = 0; l < 32; l++) {
                    int q = BlockLayouts.u8(w, blk + BlockLayouts.Q5_K_QS + 32L * g + l);
                    int h = BlockLayouts.u8(w, blk + BlockLayouts.Q5_K_QH + l);
                    int lo = (q & 0xF) + (((h >> (2 * g)) & 1) << 4);
                    int hi = (q >>> 4) + (((h >> (2 * g + 1)) & 1) << 4);
                    sum += (d1 * lo - m1) * x.get(F32, xb + 4L * (64 * g + l)) + (d2 * hi - m2) * x.get(F32, xb + 4L * (64 * g + 32 + l));
                }
            }
        }
        return sum;
    }

    /** Element {@code e} (0..255) of the Q2_K block at {@code blk}, in ggml's index arithmetic. */
    static float q2kValue(MemorySegment w, long blk, int e) {
        int n = e / 128;              // which 128-half: its 32 qs bytes
        int j = (e % 128) / 32;       // shift 2j
        int l = e % 32;               // byte l of the half: 0-15 first 16 elements, 16-31 the next 16
        int sc = BlockLayouts.u8(w, blk + n * 8 + j * 2 + l / 16);
        int q = (BlockLayouts.u8(w, blk + BlockLayouts.Q2_K_QS + 32L * n + l) >> (2 * j)) & 3;
        float d = BlockLayouts.f16(w, blk + BlockLayouts.Q2_K_D);
        float dmin = BlockLayouts.f16(w, blk + BlockLayouts.Q2_K_DMIN);
        return d * (sc & 0xF) * q - dmin * (sc >> 4);
    }

    /** Element {@code e} of the Q3_K block at {@code blk}. */
    static float q3kValue(MemorySegment w, long blk, int e) {
        int n = e / 128;
        int j = (e % 128) / 32;
        int l = e % 32;
        int scale = BlockLayouts.q3kScale(w, blk, n * 8 + j * 2 + l / 16) - 32;
        int q = (BlockLayouts.u8(w, blk + BlockLayouts.Q3_K_QS + 32L * n + l) >> (2 * j)) & 3;
        boolean high = (BlockLayouts.u8(w, blk + l) & (1 << (4 * n + j))) != 0;
        return BlockLayouts.f16(w, blk + BlockLayouts.Q3_K_D) * scale * (q - (high ? 0 : 4));
    }

    static float q2_K(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q2_K_BYTES;
            for (int e = 0; e < 256; e++) {
                sum += q2kValue(w, blk, e) * x.get(F32, xOff + 4L * (b * 256 + e));
            }
        }
        return sum;
    }

    static float q3_K(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q3_K_BYTES;
            for (int e = 0; e < 256; e++) {
                sum += q3kValue(w, blk, e) * x.get(F32, xOff + 4L * (b * 256 + e));
            }
        }
        return sum;
    }

    static float iq4_nl(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * BlockLayouts.IQ4_NL_BYTES;
            long xb = xOff + (long) b * 32 * Float.BYTES;
            float d = BlockLayouts.f16(w, blk);
            for (int j = 0; j < 16; j++) {
                int q = BlockLayouts.u8(w, blk + BlockLayouts.IQ4_NL_QS + j);
                sum += d * BlockLayouts.IQ4_NL_VALUES[q & 0xF] * x.get(F32, xb + 4L * j)
                        + d * BlockLayouts.IQ4_NL_VALUES[q >>> 4] * x.get(F32, xb + 4L * (j + 16));
            }
        }
        return sum;
    }

    static float iq4_xs(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * BlockLayouts.IQ4_XS_BYTES;
            float d = BlockLayouts.f16(w, blk);
            for (int ib = 0; ib < 8; ib++) {
                float dl = d * (BlockLayouts.iq4xsScale(w, blk, ib) - 32);
                long xb = xOff + (long) (b * 256 + ib * 32) * Float.BYTES;
                for (int j = 0; j < 16; j++) {
                    int q = BlockLayouts.u8(w, blk + BlockLayouts.IQ4_XS_QS + 16L * ib + j);
                    sum += dl * BlockLayouts.IQ4_NL_VALUES[q & 0xF] * x.get(F32, xb + 4L * j)
                            + dl * BlockLayouts.IQ4_NL_VALUES[q >>> 4] * x.get(F32, xb + 4L * (j + 16));
                }
            }
        }
        return sum;
    }
    /**
     * Q4_K (or, with {@code q5}, Q5_K) against Q8_K activations ({@link Q8KRows} row {@code t}): ggml's
     * vec_dot_q4_K_q8_K reference — integer sums per sub-block times the integer scale, one float step per
     * super-block, mins through the activation sums.
     */
    static float q4_KQ8K(MemorySegment w, long wOff, Q8KRows x, int t, boolean q5) {
        int blocks = x.blocks;
        float sum = 0f;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * (q5 ? BlockLayouts.Q5_K_BYTES : BlockLayouts.Q4_K_BYTES);
            float dx = x.dk[t * blocks + b];
            long sc = blk + BlockLayouts.Q4_K_SCALES;
            long qs = blk + (q5 ? BlockLayouts.Q5_K_QS : BlockLayouts.Q4_K_QS);
            int a = (t * blocks + b) * 256;
            int isum = 0;
            int msum = 0;
            for (int s = 0; s < 8; s++) {
                int p = 0;
                for (int l = 0; l < 32; l++) {
                    int q = (BlockLayouts.u8(w, qs + 32L * (s / 2) + l) >> (4 * (s & 1))) & 0xF;
                    if (q5) {
                        q |= ((BlockLayouts.u8(w, blk + BlockLayouts.Q5_K_QH + l) >> s) & 1) << 4;
                    }
                    p += q * x.aq[a + 32 * s + l];
                }
                isum += BlockLayouts.q4kScale(w, sc, s) * p;
                msum += BlockLayouts.q4kMin(w, sc, s) * x.bs[(t * blocks + b) * 8 + s];
            }
            sum += BlockLayouts.f16(w, blk) * dx * isum - BlockLayouts.f16(w, blk + BlockLayouts.Q4_K_DMIN) * dx * msum;
        }
        return sum;
    }

    /** Q6_K against Q8_K activations ({@link Q8KRows} row {@code t}): ggml's vec_dot_q6_K_q8_K reference. */
    static float q6_KQ8K(MemorySegment w, long wOff, Q8KRows x, int t) {
        int blocks = x.blocks;
        float sum = 0f;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q6_K_BYTES;
            int a = (t * blocks + b) * 256;
            int isum = 0;
            for (int e = 0; e < 256; e++) {
                int h = e / 128;
                int quarter = (e % 128) / 32;
                int l = e % 32;
                int ql = BlockLayouts.u8(w, blk + 64L * h + l + (quarter % 2) * 32);
                int nib = quarter < 2 ? ql & 0xF : ql >> 4;
                int qh = BlockLayouts.u8(w, blk + BlockLayouts.Q6_K_QH + 32L * h + l);
                int q = (nib | (((qh >> (2 * quarter)) & 3) << 4)) - 32;
                isum += w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q6_K_SCALES + 8L * h + l / 16 + 2 * quarter) * q * x.aq[a + e];
            }
            sum += BlockLayouts.f16(w, blk + BlockLayouts.Q6_K_D) * x.dk[t * blocks + b] * isum;
        }
        return sum;
    }
}
