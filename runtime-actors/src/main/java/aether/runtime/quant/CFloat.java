package aether.runtime.quant;

/**
 * C-compatible float helpers for porting ggml's quantizers bit for bit. Java's {@link Math#round(float)} rounds
 * half-way cases up ({@code -2.5f -> -2}) where C's {@code roundf} rounds them away from zero ({@code -> -3}), and
 * ggml's bf16 conversion is not a plain truncation; these methods reproduce the C behaviour exactly.
 *
 * <p>Stateless and allocation-free; safe from any thread.
 */
public final class CFloat {

    /** {@code 1.5 * 2^23}: adding it to a float of magnitude below 2^22 leaves the rounded integer in the mantissa. */
    private static final float NEAREST_INT_MAGIC = 12582912.f;

    private CFloat() {}

    /**
     * C's {@code roundf}: nearest integer, half-way cases away from zero; NaN and infinities pass through.
     */
    public static float roundf(float x) {
        // In double, |x| + 0.5 is exact for every float below 2^52, and floats from 2^23 up are already integers,
        // so floor() sees the true sum. Done in float, 0.49999997f + 0.5f would round up to 1.0f.
        return (float) Math.copySign(Math.floor(Math.abs((double) x) + 0.5), x);
    }

    /**
     * ggml's {@code nearest_int}: round to nearest, ties to even, by the {@code 12582912.f} mantissa trick. Valid for
     * {@code |x| <= 4194303} like the C original (which only asserts it); outside that range the result is garbage, as
     * in C.
     */
    public static int nearestInt(float x) {
        float biased = x + NEAREST_INT_MAGIC;
        int bits = Float.floatToRawIntBits(biased);
        return (bits & 0x007fffff) - 0x00400000;
    }

    /** bf16 bits to f32: the bits become the upper half of the float. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat(bits << 16);
    }

    /**
     * ggml's {@code ggml_compute_fp32_to_bf16} (ggml-impl.h): NaN becomes a quiet NaN keeping sign and upper payload,
     * everything else rounds to nearest even (subnormals are kept, infinities stay infinite, overflow goes to
     * infinity).
     */
    public static short floatToBf16(float x) {
        int u = Float.floatToRawIntBits(x);
        if ((u & 0x7fffffff) > 0x7f800000) {
            return (short) ((u >>> 16) | 64);
        }
        return (short) ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16);
    }

    /** C's {@code (int8_t) f} for values in range: truncation toward zero, keeping the low 8 bits. */
    static int truncToInt8(float x) {
        return (byte) (int) x;
    }
}
