package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.util.Random;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * Quantize → dequantize error bounds of the K-quant reference quantizers on random rows of 1–3 blocks whose blocks are
 * all-zero, constant, Gaussian, uniform, offset, sparse, heavy-tailed, with outliers, with sub-blocks of very
 * different scales, on a grid, all negative or ramps, at magnitudes from 1e-6 to 1e5.
 *
 * <p>The bound, per 256-element block with largest magnitude {@code amax}: {@code RMSE ≤ c·amax + a}.
 * <ul>
 *   <li>{@code c} is half the level spacing of a grid of the type's levels spanning the block: {@code amax/(2^b-1)}
 *       for the asymmetric b-bit types with a min (Q2_K, Q4_K, Q5_K: range ≤ 2·amax over 2^b-1 steps, halved),
 *       {@code amax/(2·2^(b-1))} for the symmetric ones (Q3_K: 4, Q6_K: 32, Q8_K: 127 steps per amax). A nearest-level
 *       quantizer has every error within half a step; the scale searches trade the largest errors of a sub-block for
 *       a smaller weighted error and the 4/6-bit sub-scales perturb the grid, so only the RMSE keeps the bound (over
 *       20,000 random blocks per type the worst RMSE/amax was 0.47 to 0.74 of {@code c}).
 *   <li>{@code a} covers f16 subnormals: a block at ~1e-6 has super-block scales below f16's smallest normal, rounded
 *       to multiples of 2^-24, which moves a value by up to 2^-25 times its integer multiplier (sub-scale × level
 *       plus sub-min). {@code a} is 2^-24 times the largest multiplier. Q8_K's scale is f32, so {@code a = 0}.
 * </ul>
 * Outside the generated range (|x| above ~1e6 for Q2_K) llama.cpp's f16 super-block scales overflow to infinity;
 * these codecs reproduce that, so such inputs are not part of the property.
 */
class KQuantRoundTripProperties {

    private static final float F16_SUBNORMAL_STEP = 0x1p-24f;

    @Property(tries = 150)
    void q2kRoundTripErrorIsBounded(@ForAll("rows") float[] x) {
        checkRoundTrip(new Q2_KCodec(), x, 1 / 3.0, 15 * 3 + 15);
    }

    @Property(tries = 150)
    void q3kRoundTripErrorIsBounded(@ForAll("rows") float[] x) {
        checkRoundTrip(new Q3_KCodec(), x, 1 / 8.0, 32 * 4);
    }

    @Property(tries = 150)
    void q4kRoundTripErrorIsBounded(@ForAll("rows") float[] x) {
        checkRoundTrip(new Q4_KCodec(false), x, 1 / 15.0, 63 * 15 + 63);
        checkRoundTrip(new Q4_KCodec(true), x, 1 / 15.0, 63 * 15 + 63);
    }

    @Property(tries = 150)
    void q5kRoundTripErrorIsBounded(@ForAll("rows") float[] x) {
        checkRoundTrip(new Q5_KCodec(false), x, 1 / 31.0, 63 * 31 + 63);
        checkRoundTrip(new Q5_KCodec(true), x, 1 / 31.0, 63 * 31 + 63);
    }

    @Property(tries = 150)
    void q6kRoundTripErrorIsBounded(@ForAll("rows") float[] x) {
        checkRoundTrip(new Q6_KCodec(false), x, 1 / 64.0, 128 * 32);
        checkRoundTrip(new Q6_KCodec(true), x, 1 / 64.0, 128 * 32);
    }

    @Property(tries = 150)
    void q8kRoundTripErrorIsBounded(@ForAll("rows") float[] x) {
        checkRoundTrip(new Q8_KCodec(), x, 1 / 254.0, 0);
    }

    @Provide
    Arbitrary<float[]> rows() {
        return Arbitraries.integers().between(1, 3).flatMap(blocks -> Arbitraries.randomValue(random -> row(random, blocks)));
    }

    private static float[] row(Random random, int blocks) {
        float[] x = new float[256 * blocks];
        for (int b = 0; b < blocks; b++) {
            float magnitude = (float) Math.pow(10, -6 + 11 * random.nextDouble());
            float[] block = KQuantPropertiesSupport.block(random, random.nextInt(KQuantPropertiesSupport.KINDS), magnitude);
            System.arraycopy(block, 0, x, 256 * b, 256);
        }
        return x;
    }

    private static void checkRoundTrip(BlockCodec codec, float[] x, double relative, int largestMultiplier) {
        int blockBytes = codec.type().blockBytes();
        int blocks = x.length / 256;
        MemorySegment q = MemorySegment.ofArray(new byte[blocks * blockBytes]);
        codec.quantize(x, 0, x.length, q, 0);
        float[] y = new float[x.length];
        codec.dequantize(q, 0, y, 0, x.length);
        double absolute = (double) F16_SUBNORMAL_STEP * largestMultiplier;
        for (int b = 0; b < blocks; b++) {
            double amax = 0;
            double sum = 0;
            for (int i = 256 * b; i < 256 * (b + 1); i++) {
                assertThat(Float.isFinite(y[i])).as("%s: element %d of finite input %s dequantized to %s",
                        codec.type(), i, x[i], y[i]).isTrue();
                amax = Math.max(amax, Math.abs(x[i]));
                double d = (double) x[i] - y[i];
                sum += d * d;
            }
            double rmse = Math.sqrt(sum / 256);
            if (amax == 0) {
                assertThat(rmse).as("%s: an all-zero block must come back as zeros", codec.type()).isZero();
            }
            assertThat(rmse).as("%s block %d: RMSE vs its amax %s", codec.type(), b, amax)
                    .isLessThanOrEqualTo(relative * amax + absolute);
        }
    }
}
