package aether.scheduler.exec;

import aether.runtime.ir.DType;

/** Rounds doubles to what a dtype can hold: round to nearest even, as a device would store them. */
final class Rounding {

    private Rounding() {}

    static void round(double[] v, DType dtype) {
        switch (dtype.ggml()) {
            case F32 -> {
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) v[i];
                }
            }
            // double -> float -> half rounds twice; the float step is exact for every value a half can distinguish
            // except ties, which is within the reference's tolerance.
            case F16 -> {
                for (int i = 0; i < v.length; i++) {
                    v[i] = Float.float16ToFloat(Float.floatToFloat16((float) v[i]));
                }
            }
            case BF16 -> {
                for (int i = 0; i < v.length; i++) {
                    v[i] = bf16((float) v[i]);
                }
            }
            default -> { }
        }
    }

    /** ggml's fp32_to_bf16: round to nearest even, NaN kept quiet. */
    static float bf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) {
            return Float.intBitsToFloat((u | 0x00400000) & 0xffff0000);
        }
        u = (u + (0x7fff + ((u >>> 16) & 1))) & 0xffff0000;
        return Float.intBitsToFloat(u);
    }
}
