package aether.runtime.quant;

import static aether.runtime.quant.CFloat.nearestInt;
import static aether.runtime.quant.LittleEndian.putU8;
import static aether.runtime.quant.LittleEndian.u8;

import java.lang.foreign.MemorySegment;

/**
 * Shared arithmetic of the K-quant codecs: ggml's C rounding ({@code nearest_int}), f16 scale access and the
 * scale-search routines of {@code ggml-quants.c} ({@code make_qx_quants}, {@code make_q3_quants},
 * {@code make_qkx2_quants}) ported operation for operation.
 *
 * <p>Bit-exactness with llama.cpp depends on evaluating every float expression in C's order with float (not
 * double) intermediates and without fused multiply-adds: {@code w*x[i]*l} is {@code (w*x[i])*l}, an {@code int}
 * operand is converted to float before the multiply. ggml-quants.c lives in ggml-base, which is built without
 * {@code -march} flags, so the C compiler cannot contract these into FMAs either. The comments below only flag the
 * places where a reordering would be tempting.
 */
final class KQuantMath {

    /** Elements per K-quant super-block ({@code QK_K}). */
    static final int QK_K = 256;

    /** Bytes of the packed 6-bit scales and mins of Q4_K/Q5_K ({@code K_SCALE_SIZE}). */
    static final int K_SCALE_SIZE = 12;

    /** ggml's threshold below which a group is treated as all zero ({@code GROUP_MAX_EPS}). */
    static final float GROUP_MAX_EPS = 1e-15f;

    private KQuantMath() {}

    /** {@code get_scale_min_k4}: the 6-bit scale of sub-block {@code j} (0..7) in Q4_K/Q5_K's 12 scale bytes. */
    static int scaleK4(MemorySegment s, long scales, int j) {
        return j < 4
                ? u8(s, scales + j) & 63
                : (u8(s, scales + j + 4) & 0xF) | ((u8(s, scales + j - 4) >> 6) << 4);
    }

    /** {@code get_scale_min_k4}: the 6-bit min of sub-block {@code j} (0..7) in Q4_K/Q5_K's 12 scale bytes. */
    static int minK4(MemorySegment s, long scales, int j) {
        return j < 4
                ? u8(s, scales + j + 4) & 63
                : (u8(s, scales + j + 4) >> 4) | ((u8(s, scales + j) >> 6) << 4);
    }

    /** Same as {@link #scaleK4} over a scratch copy of the scale bytes (quantizers re-read what they packed). */
    static int scaleK4(byte[] q, int j) {
        return j < 4 ? q[j] & 63 : (q[j + 4] & 0xF) | (((q[j - 4] & 0xFF) >> 6) << 4);
    }

    static int minK4(byte[] q, int j) {
        return j < 4 ? q[j + 4] & 63 : ((q[j + 4] & 0xFF) >> 4) | (((q[j] & 0xFF) >> 6) << 4);
    }

    /**
     * Packs 6-bit scale {@code ls} and min {@code lm} of sub-block {@code j} into Q4_K/Q5_K's 12 scale bytes, as in
     * {@code quantize_row_q4_K_ref}. Bytes 0..11 must start zeroed for {@code j >= 4} to OR into.
     */
    static void packScaleMinK4(byte[] q, int j, int ls, int lm) {
        if (j < 4) {
            q[j] = (byte) ls;
            q[j + 4] = (byte) lm;
        } else {
            q[j + 4] = (byte) ((ls & 0xF) | ((lm & 0xF) << 4));
            q[j - 4] |= (byte) ((ls >> 4) << 6);
            q[j] |= (byte) ((lm >> 4) << 6);
        }
    }

    /**
     * {@code make_qx_quants} for {@code qw == NULL} (the reference quantizers' case): symmetric levels
     * {@code -nmax..nmax-1} stored as {@code l + nmax} in {@code L[lOff..]}, returning the scale.
     */
    static float makeQxQuants(int n, int nmax, float[] x, int xOff, byte[] L, int lOff, int rmseType) {
        float max = 0;
        float amax = 0;
        for (int i = 0; i < n; ++i) {
            float ax = Math.abs(x[xOff + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xOff + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; ++i) {
                L[lOff + i] = 0;
            }
            return 0.f;
        }
        float iscale = -nmax / max; // int -nmax converted to float, then divided
        if (rmseType == 0) {
            for (int i = 0; i < n; ++i) {
                int l = nearestInt(iscale * x[xOff + i]);
                L[lOff + i] = (byte) (nmax + Math.max(-nmax, Math.min(nmax - 1, l)));
            }
            return 1 / iscale;
        }
        boolean returnEarly = false;
        if (rmseType < 0) {
            rmseType = -rmseType;
            returnEarly = true;
        }
        float sumlx = 0;
        float suml2 = 0;
        for (int i = 0; i < n; ++i) {
            float xi = x[xOff + i];
            int l = nearestInt(iscale * xi);
            l = Math.max(-nmax, Math.min(nmax - 1, l));
            L[lOff + i] = (byte) (l + nmax);
            float w = weight(rmseType, xi);
            sumlx += w * xi * l; // (w*x)*l, float
            suml2 += w * l * l;  // (w*l)*l, float
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        if (returnEarly) {
            return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
        }
        float best = scale * sumlx;
        for (int is = -9; is <= 9; ++is) {
            if (is == 0) {
                continue;
            }
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = 0;
            suml2 = 0;
            for (int i = 0; i < n; ++i) {
                float xi = x[xOff + i];
                int l = nearestInt(iscale * xi);
                l = Math.max(-nmax, Math.min(nmax - 1, l));
                float w = weight(rmseType, xi);
                sumlx += w * xi * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; ++i) {
                    int l = nearestInt(iscale * x[xOff + i]);
                    L[lOff + i] = (byte) (nmax + Math.max(-nmax, Math.min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    private static float weight(int rmseType, float x) {
        return switch (rmseType) {
            case 1 -> x * x;
            case 2 -> 1;
            case 3 -> Math.abs(x);
            default -> (float) Math.sqrt(Math.abs(x)); // sqrtf is correctly rounded, as is sqrt via double
        };
    }

    /**
     * {@code make_q3_quants}: symmetric levels {@code -nmax..nmax-1} with x²-weighted coordinate descent
     * ({@code do_rmse}); stores {@code l + nmax} in {@code L[lOff..]} and returns the scale.
     */
    static float makeQ3Quants(int n, int nmax, float[] x, int xOff, byte[] L, int lOff, boolean doRmse) {
        float max = 0;
        float amax = 0;
        for (int i = 0; i < n; ++i) {
            float ax = Math.abs(x[xOff + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xOff + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; ++i) {
                L[lOff + i] = 0;
            }
            return 0.f;
        }
        float iscale = -nmax / max;
        if (doRmse) {
            float sumlx = 0;
            float suml2 = 0;
            for (int i = 0; i < n; ++i) {
                float xi = x[xOff + i];
                int l = nearestInt(iscale * xi);
                l = Math.max(-nmax, Math.min(nmax - 1, l));
                L[lOff + i] = (byte) l;
                float w = xi * xi;
                sumlx += w * xi * l;
                suml2 += w * l * l;
            }
            for (int itry = 0; itry < 5; ++itry) {
                int nChanged = 0;
                for (int i = 0; i < n; ++i) {
                    float xi = x[xOff + i];
                    int li = L[lOff + i];
                    float w = xi * xi;
                    float slx = sumlx - w * xi * li;
                    if (slx > 0) {
                        float sl2 = suml2 - w * li * li;
                        int newL = nearestInt(xi * sl2 / slx); // (x*sl2)/slx
                        newL = Math.max(-nmax, Math.min(nmax - 1, newL));
                        if (newL != li) {
                            slx += w * xi * newL;
                            sl2 += w * newL * newL;
                            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                                L[lOff + i] = (byte) newL;
                                sumlx = slx;
                                suml2 = sl2;
                                ++nChanged;
                            }
                        }
                    }
                }
                if (nChanged == 0) {
                    break;
                }
            }
            for (int i = 0; i < n; ++i) {
                L[lOff + i] += (byte) nmax;
            }
            return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
        }
        for (int i = 0; i < n; ++i) {
            int l = nearestInt(iscale * x[xOff + i]);
            l = Math.max(-nmax, Math.min(nmax - 1, l));
            L[lOff + i] = (byte) (l + nmax);
        }
        return 1 / iscale;
    }

    /**
     * {@code make_qkx2_quants}: asymmetric levels {@code 0..nmax} with a min, searching {@code nstep+1} candidate
     * scales for the least weighted error (absolute if {@code useMad}, squared otherwise). Stores levels in
     * {@code L[lOff..]}, writes the min (as a positive offset, {@code -min}) to {@code theMin[minIndex]} and returns
     * the scale. {@code laux} is scratch of at least {@code n}.
     */
    static float makeQkx2Quants(int n, int nmax, float[] x, int xOff, float[] weights, byte[] L, int lOff,
            float[] theMin, int minIndex, byte[] laux, float rmin, float rdelta, int nstep, boolean useMad) {
        float min = x[xOff];
        float max = x[xOff];
        float sumW = weights[0];
        float sumX = sumW * x[xOff];
        for (int i = 1; i < n; ++i) {
            float xi = x[xOff + i];
            if (xi < min) {
                min = xi;
            }
            if (xi > max) {
                max = xi;
            }
            float w = weights[i];
            sumW += w;
            sumX += w * xi;
        }
        if (min > 0) {
            min = 0;
        }
        if (max == min) {
            for (int i = 0; i < n; ++i) {
                L[lOff + i] = 0;
            }
            theMin[minIndex] = -min;
            return 0.f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; ++i) {
            float xi = x[xOff + i];
            int l = nearestInt(iscale * (xi - min));
            l = Math.max(0, Math.min(nmax, l));
            L[lOff + i] = (byte) l;
            float diff = scale * l + min - xi; // ((scale*L) + min) - x
            diff = useMad ? Math.abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1) {
            theMin[minIndex] = -min;
            return scale;
        }
        for (int is = 0; is <= nstep; ++is) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0;
            float sumL2 = 0;
            float sumXl = 0;
            for (int i = 0; i < n; ++i) {
                float xi = x[xOff + i];
                int l = nearestInt(iscale * (xi - min));
                l = Math.max(0, Math.min(nmax, l));
                laux[i] = (byte) l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXl += w * l * xi; // (w*l)*x
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXl - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXl) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXl / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; ++i) {
                    float diff = thisScale * laux[i] + thisMin - x[xOff + i];
                    diff = useMad ? Math.abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError) {
                    System.arraycopy(laux, 0, L, lOff, n);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin[minIndex] = -min;
        return scale;
    }

    /** Packs 2-bit levels as Q2_K/Q3_K do: byte {@code j/4 + l} of each 128-group holds elements l, l+32, l+64, l+96. */
    static void pack2Bit(byte[] L, MemorySegment dst, long qs) {
        for (int j = 0; j < QK_K; j += 128) {
            for (int l = 0; l < 32; ++l) {
                int v = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
                putU8(dst, qs + j / 4 + l, v);
            }
        }
    }
}
