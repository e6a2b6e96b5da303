package aether.llm.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class ExpSumTest {

    /** Sizes that reach every tail (lanes, blocks) and real vocabularies; spreads from flat to peaked. */
    @Test
    void shouldAgreeWithTheFloat64ReferenceWithinOnePartPerMillion() {
        Random r = new Random(17);
        for (int n : new int[] {1, 7, 8, 9, 1023, 1024, 1025, 4097, 32_000, 128_256}) {
            for (double spread : new double[] {0.01, 1, 5, 30}) {
                int offset = r.nextInt(5);
                float[] x = new float[n + offset + 3];
                float max = Float.NEGATIVE_INFINITY;
                for (int i = 0; i < n; i++) {
                    x[offset + i] = (float) (r.nextGaussian() * spread);
                    max = Math.max(max, x[offset + i]);
                }
                x[offset + n] = 1e6f;   // past the range: must not be read
                double reference = 0;
                for (int i = 0; i < n; i++) {
                    reference += Math.exp((double) x[offset + i] - max);
                }
                assertThat(ExpSum.scalar(x, offset, n, max)).isCloseTo(reference, within(1e-12 * reference));
                assertThat(ExpSum.vector(x, offset, n, max)).as("n %d spread %s", n, spread)
                        .isCloseTo(reference, within(1e-6 * reference));
                assertThat(ExpSum.sum(x, offset, n, max)).isCloseTo(reference, within(1e-6 * reference));
            }
        }
    }

    @Test
    void shouldTreatMinusInfinityAsZeroMass() {
        float[] x = new float[40];
        java.util.Arrays.fill(x, Float.NEGATIVE_INFINITY);
        x[3] = 2f;
        x[37] = 2f;
        assertThat(ExpSum.vector(x, 0, 40, 2f)).isCloseTo(2.0, within(1e-6));
        assertThat(ExpSum.scalar(x, 0, 40, 2f)).isEqualTo(2.0);
    }
}
