package aether.runtime.quant;

import static aether.runtime.quant.IqMath.GROUP_MAX_EPS;
import static aether.runtime.quant.IqMath.bestIndexInt8;
import static aether.runtime.quant.CFloat.nearestInt;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Port of ggml's {@code quantize_row_iq4_nl_impl} for the 16-level table without an importance matrix and with
 * {@code ntry = 7}, the path {@code llama-quantize} takes for IQ4_NL ({@code super_block_size = 32}) and IQ4_XS
 * ({@code 256}): per 32-weight sub-block, the scale with the best weighted fit (weights {@code x^2}) among the
 * least-squares start and 15 trial inverse scales {@code (itry - 127) / max}.
 *
 * <p>Float expressions keep ggml's evaluation order ({@code (w*q)*x}, left to right), because the search compares
 * scores and a different rounding can pick another scale.
 */
final class Iq4NonLinearQuantizer {

    private static final int NTRY = 7;
    private static final byte[] VALUES = IQ4_NLCodec.KVALUES;

    /** Per-thread work arrays so quantizing allocates nothing after the first call on a thread. */
    static final class Scratch {
        final float[] weight = new float[32];
        final float[] scales = new float[8];
        final int[] levels = new int[256];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private Iq4NonLinearQuantizer() {}

    static Scratch scratch() {
        return SCRATCH.get();
    }

    /**
     * Quantizes {@code superBlockSize} (32 or 256) floats at {@code x[xi..]}. Writes the f16 scale at {@code dOffset}
     * and the nibbles at {@code qsOffset}; for 256, also {@code scales_h} / {@code scales_l} at the given offsets.
     */
    static void quantize(int superBlockSize, float[] x, int xi, MemorySegment dst, long dOffset, long qsOffset,
            long scalesHOffset, long scalesLOffset, Scratch s) {
        float[] weight = s.weight;
        float[] scales = s.scales;
        int[] levels = s.levels;
        int nb = superBlockSize / 32;

        float maxScale = 0;
        float amaxScale = 0;
        for (int ib = 0; ib < nb; ib++) {
            int xb = xi + 32 * ib;
            for (int j = 0; j < 32; j++) {
                weight[j] = x[xb + j] * x[xb + j];
            }
            float amax = 0;
            float max = 0;
            for (int j = 0; j < 32; j++) {
                float ax = Math.abs(x[xb + j]);
                if (ax > amax) {
                    amax = ax;
                    max = x[xb + j];
                }
            }
            if (amax < GROUP_MAX_EPS) {
                scales[ib] = 0;
                Arrays.fill(levels, 32 * ib, 32 * ib + 32, 0);
                continue;
            }
            float d = -max / VALUES[0];
            float id = 1 / d;
            float sumqx = 0;
            float sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                float al = id * x[xb + j];
                int l = bestIndexInt8(16, VALUES, al);
                float q = VALUES[l];
                float w = weight[j];
                sumqx += w * q * x[xb + j];
                sumq2 += w * q * q;
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
            float best = d * sumqx;
            for (int itry = -NTRY; itry <= NTRY; itry++) {
                id = (itry + VALUES[0]) / max;
                sumqx = 0;
                sumq2 = 0;
                for (int j = 0; j < 32; j++) {
                    float al = id * x[xb + j];
                    int l = bestIndexInt8(16, VALUES, al);
                    float q = VALUES[l];
                    float w = weight[j];
                    sumqx += w * q * x[xb + j];
                    sumq2 += w * q * q;
                }
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
            scales[ib] = d;
            float absD = Math.abs(d);
            if (absD > amaxScale) {
                amaxScale = absD;
                maxScale = d;
            }
        }

        if (nb > 1) {
            int scalesH = 0;
            float d = -maxScale / 32;
            LittleEndian.putF16(dst, dOffset, d);
            float id = d != 0 ? 1 / d : 0.f;
            for (int ib = 0; ib < nb; ib++) {
                int l = nearestInt(id * scales[ib]);
                l = Math.max(-32, Math.min(31, l));
                float dl = d * l;
                float idl = dl != 0 ? 1 / dl : 0.f;
                int xb = xi + 32 * ib;
                for (int j = 0; j < 32; j++) {
                    levels[32 * ib + j] = bestIndexInt8(16, VALUES, idl * x[xb + j]);
                }
                l += 32;
                int lowNibble = l & 0xF;
                int high = l >>> 4;
                long at = scalesLOffset + ib / 2;
                if (ib % 2 == 0) {
                    dst.set(LittleEndian.BYTE, at, (byte) lowNibble);
                } else {
                    dst.set(LittleEndian.BYTE, at, (byte) (LittleEndian.u8(dst, at) | lowNibble << 4));
                }
                scalesH |= high << 2 * (ib % 8);
            }
            dst.set(LittleEndian.SHORT, scalesHOffset, (short) scalesH);
        } else {
            LittleEndian.putF16(dst, dOffset, scales[0]);
            float id = scales[0] != 0 ? 1 / scales[0] : 0;
            for (int j = 0; j < 32; j++) {
                levels[j] = bestIndexInt8(16, VALUES, id * x[xi + j]);
            }
        }

        for (int i = 0; i < superBlockSize / 32; i++) {
            for (int j = 0; j < 16; j++) {
                dst.set(LittleEndian.BYTE, qsOffset + 16L * i + j,
                        (byte) (levels[32 * i + j] | levels[32 * i + 16 + j] << 4));
            }
        }
    }
}
