package aether.runtime.quant;

import java.util.Random;

/** Random 256-element blocks of the shapes that stress K-quant scale searches. */
final class KQuantPropertiesSupport {

    static final int KINDS = 12;

    /** Largest magnitude generated: far below where any K-quant's f16 super-block scale overflows (~1e6 for Q2_K). */
    static final float MAX_ABS = 1e5f;

    private KQuantPropertiesSupport() {}

    /** One block of the given kind (0..KINDS-1) at magnitude {@code s}. */
    static float[] block(Random r, int kind, float s) {
        float[] x = new float[256];
        switch (kind) {
            case 0 -> { } // all zero
            case 1 -> java.util.Arrays.fill(x, (r.nextBoolean() ? s : -s) * (0.5f + r.nextFloat()));
            case 2 -> fill(x, i -> (float) r.nextGaussian() * s);
            case 3 -> fill(x, i -> (2 * r.nextFloat() - 1) * s);
            case 4 -> { float off = s * (1 + r.nextFloat()); fill(x, i -> off + 0.1f * s * (float) r.nextGaussian()); }
            case 5 -> { for (int i = 0; i < 256; i += 32) { x[i + r.nextInt(32)] = (float) r.nextGaussian() * s; } }
            case 6 -> fill(x, i -> (float) (r.nextGaussian() / Math.max(1e-3, Math.abs(r.nextGaussian()))) * s);
            case 7 -> fill(x, i -> (float) r.nextGaussian() * s * (r.nextInt(100) == 0 ? 12 : 1));
            case 8 -> { // sub-blocks whose scales differ by up to 10^4
                for (int g = 0; g < 16; g++) {
                    float gs = s * (float) Math.pow(10, -4 * r.nextDouble());
                    for (int i = 0; i < 16; i++) {
                        x[16 * g + i] = (float) r.nextGaussian() * gs;
                    }
                }
            }
            case 9 -> fill(x, i -> (r.nextInt(16) - 8) / 4f * s);
            case 10 -> fill(x, i -> -Math.abs((float) r.nextGaussian()) * s);
            default -> { for (int g = 0; g < 256; g += 32) { float off = s * (float) r.nextGaussian(); for (int i = 0; i < 32; i++) { x[g + i] = off + (i - 16) / 16f * s * 0.3f; } } }
        }
        float amax = 0;
        for (float v : x) {
            amax = Math.max(amax, Math.abs(v));
        }
        if (amax > MAX_ABS) { // keep the block inside the range where f16 super-block scales cannot overflow
            for (int i = 0; i < x.length; i++) {
                x[i] = x[i] / amax * MAX_ABS;
            }
        }
        return x;
    }

    private interface IntToFloat {
        float at(int i);
    }

    private static void fill(float[] x, IntToFloat f) {
        for (int i = 0; i < x.length; i++) {
            x[i] = f.at(i);
        }
    }
}
