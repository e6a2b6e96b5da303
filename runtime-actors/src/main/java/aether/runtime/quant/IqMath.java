package aether.runtime.quant;

import java.lang.foreign.MemorySegment;

/**
 * C-compatible arithmetic shared by the IQ, ternary and MXFP4 codecs: little-endian field reads, ggml's
 * {@code nearest_int}, {@code best_index_int8} and the E8M0 scale decoding. Every helper reproduces ggml's float
 * operations in the same order so that results are bit-identical.
 */
final class IqMath {

    /** ggml's GROUP_MAX_EPS: a sub-block whose largest magnitude is below this is stored as all zero. */
    static final float GROUP_MAX_EPS = 1e-15f;

    private IqMath() {}

    /**
     * ggml's {@code best_index_int8}: the index of the level of the ascending table {@code val} (length {@code n})
     * nearest to {@code x}; a tie goes to the upper level. Bisection as in ggml, with the final comparison written
     * as {@code x - lo < hi - x} exactly like ggml's (rounding of the two differences included).
     */
    static int bestIndexInt8(int n, byte[] val, float x) {
        if (x <= val[0]) {
            return 0;
        }
        if (x >= val[n - 1]) {
            return n - 1;
        }
        int ml = 0;
        int mu = n - 1;
        while (mu - ml > 1) {
            int mav = (ml + mu) / 2;
            if (x < val[mav]) {
                mu = mav;
            } else {
                ml = mav;
            }
        }
        return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
    }

    /**
     * GGML_E8M0_TO_FP32_HALF: half of the power of two 2^(e-127) that an E8M0 byte encodes, i.e. 2^(e-128). Bytes 0
     * and 1 give the subnormals 2^-128 and 2^-127; 255 gives 2^127 (ggml does not treat it as NaN).
     */
    static float e8m0ToFloatHalf(int e) {
        int bits = e < 2 ? 0x00200000 << e : (e - 1) << 23;
        return Float.intBitsToFloat(bits);
    }

    /** C's {@code lroundf} for values far inside the int range: round half away from zero. */
    static int lroundf(float x) {
        double a = Math.floor(Math.abs((double) x) + 0.5);
        return (int) (x < 0 ? -a : a);
    }
}
