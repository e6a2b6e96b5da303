package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The attention inner loops against float64 sums, on sizes with and without a vector path, f16 specials included. */
class AttentionKernelsTest {

    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 8, 64, 128, 13})
    void shouldMatchFloat64ForF16AndF32Rows(int n) {
        Random r = new Random(n);
        float[] q = new float[n];
        MemorySegment half = MemorySegment.ofArray(new byte[2 * n + 2]);   // +2: rows start unaligned
        MemorySegment full = MemorySegment.ofArray(new byte[4 * n + 4]);
        double dotH = 0;
        double dotF = 0;
        for (int i = 0; i < n; i++) {
            q[i] = (float) r.nextGaussian();
            // magnitudes from subnormal halves (~1e-6) to large ones
            float v = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(9) - 6));
            short h = Float.floatToFloat16(v);
            half.set(F16, 2 + 2L * i, h);
            full.set(F32, 4 + 4L * i, v);
            dotH += (double) q[i] * Float.float16ToFloat(h);
            dotF += (double) q[i] * v;
        }
        double scaleH = 0;
        double scaleF = 0;
        for (int i = 0; i < n; i++) {
            scaleH += Math.abs(q[i] * Float.float16ToFloat(half.get(F16, 2 + 2L * i)));
            scaleF += Math.abs(q[i] * full.get(F32, 4 + 4L * i));
        }
        assertThat((double) AttentionKernels.dotF16(q, half, 2, n)).isCloseTo(dotH,
                org.assertj.core.data.Offset.offset(1e-6 * scaleH + 1e-30));
        assertThat((double) AttentionKernels.dotF32(q, full, 4, n)).isCloseTo(dotF,
                org.assertj.core.data.Offset.offset(1e-6 * scaleF + 1e-30));
        float[] oH = q.clone();
        float[] oF = q.clone();
        AttentionKernels.axpyF16(0.75f, half, 2, oH);
        AttentionKernels.axpyF32(0.75f, full, 4, oF);
        for (int i = 0; i < n; i++) {   // one rounding (fma) or two (scalar): within an ulp of the exact value
            double h = q[i] + 0.75 * Float.float16ToFloat(half.get(F16, 2 + 2L * i));
            double f = q[i] + 0.75 * full.get(F32, 4 + 4L * i);
            assertThat((double) oH[i]).isCloseTo(h, org.assertj.core.data.Offset.offset(2.0 * Math.ulp((float) h)));
            assertThat((double) oF[i]).isCloseTo(f, org.assertj.core.data.Offset.offset(2.0 * Math.ulp((float) f)));
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {8, 64})
    void shouldKeepInfAndNaNHalvesExact(int n) {
        float[] q = new float[n];
        java.util.Arrays.fill(q, 1f);
        MemorySegment half = MemorySegment.ofArray(new byte[2 * n]);
        for (int i = 0; i < n; i++) {
            half.set(F16, 2L * i, Float.floatToFloat16(1f));
        }
        half.set(F16, 2L * (n - 3), Float.floatToFloat16(Float.POSITIVE_INFINITY));
        assertThat(AttentionKernels.dotF16(q, half, 0, n)).isEqualTo(Float.POSITIVE_INFINITY);
        float[] o = new float[n];
        AttentionKernels.axpyF16(2f, half, 0, o);
        assertThat(o[n - 3]).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(o[0]).isEqualTo(2f);
        half.set(F16, 2L * (n - 3), Float.floatToFloat16(Float.NaN));
        assertThat(AttentionKernels.dotF16(q, half, 0, n)).isNaN();
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 8, 29})
    void shouldReadQ8_0RowsAcrossBlockBoundaries(int col0) {
        Random r = new Random(col0);
        MemorySegment row = MemorySegment.ofArray(new byte[3 * 34]);
        double[] values = new double[96];
        for (int b = 0; b < 3; b++) {
            float d = (float) (0.01 + r.nextDouble() * 0.1);
            row.set(F16, b * 34L, Float.floatToFloat16(d));
            for (int j = 0; j < 32; j++) {
                byte q = (byte) (r.nextInt(255) - 127);
                row.set(ValueLayout.JAVA_BYTE, b * 34L + 2 + j, q);
                values[b * 32 + j] = q * (double) Float.float16ToFloat(Float.floatToFloat16(d));
            }
        }
        int n = 40;
        float[] q = new float[n];
        double expected = 0;
        double scale = 0;
        for (int i = 0; i < n; i++) {
            q[i] = (float) r.nextGaussian();
            expected += q[i] * values[col0 + i];
            scale += Math.abs(q[i] * values[col0 + i]);
        }
        assertThat((double) AttentionKernels.dotQ8_0(q, row, 0, col0, n)).isCloseTo(expected,
                org.assertj.core.data.Offset.offset(1e-6 * scale));
        float[] o = new float[n];
        AttentionKernels.axpyQ8_0(0.5f, row, 0, col0, o);
        for (int i = 0; i < n; i++) {
            assertThat((double) o[i]).isCloseTo(0.5 * values[col0 + i],
                    org.assertj.core.data.Offset.offset(1e-6 * Math.abs(values[col0 + i]) + 1e-12));
        }
    }
}
