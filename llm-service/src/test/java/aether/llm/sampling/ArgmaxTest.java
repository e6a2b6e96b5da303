package aether.llm.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** {@link Argmax#first}: the greedy choice the sampler and the engines' argmax-only steps share. */
class ArgmaxTest {

    @Test
    void theFirstOfEqualMaximaWinsAndNegativeInfinityIsAnOrdinaryLoser() {
        float ninf = Float.NEGATIVE_INFINITY;
        assertThat(Argmax.first(new float[] {1f, 3f, 3f, 2f}, 0, 4)).isEqualTo(1);
        assertThat(Argmax.first(new float[] {ninf, ninf, -5f, -5f}, 0, 4)).isEqualTo(2);
        assertThat(Argmax.first(new float[] {-0f, 0f}, 0, 2)).as("-0 and +0 are equal").isEqualTo(0);
        assertThat(Argmax.first(new float[] {9f, 9f, 1f, 4f, 4f}, 2, 3)).as("relative to the offset").isEqualTo(1);
    }

    @Test
    void nanPositiveInfinityAndAllBannedAreErrorsNamingTheToken() {
        assertThatThrownBy(() -> Argmax.first(new float[] {1f, Float.NaN, 2f}, 0, 3))
                .isInstanceOf(IllegalStateException.class).hasMessage("logit of token 1 is NaN");
        assertThatThrownBy(() -> Argmax.first(new float[] {Float.NaN, 1f}, 0, 2))
                .isInstanceOf(IllegalStateException.class).hasMessage("logit of token 0 is NaN");
        assertThatThrownBy(() -> Argmax.first(new float[] {7f, 1f, Float.POSITIVE_INFINITY}, 1, 2))
                .isInstanceOf(IllegalStateException.class).hasMessage("logit of token 1 is Infinity");
        assertThatThrownBy(() -> Argmax.first(new float[] {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY}, 0, 2))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("every candidate token");
        assertThatThrownBy(() -> Argmax.first(new float[4], 2, 3)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void agreesWithTheGreedySamplerOnRandomLogitsWithTiesAndBans() {
        SplittableRandom r = new SplittableRandom(42);
        int vocab = 301;
        var greedy = new Sampler(new SamplerConfig(0f, 0, 1f, 0f, 1f, 0f, 0f, 0, Map.of(), 1), vocab);
        for (int rep = 0; rep < 500; rep++) {
            float[] logits = new float[vocab + 3];
            for (int i = 0; i < logits.length; i++) {
                // few distinct values: ties everywhere; some bans
                logits[i] = r.nextInt(10) == 0 ? Float.NEGATIVE_INFINITY : r.nextInt(8) - 4;
            }
            int offset = r.nextInt(4);
            int scalar = 0;
            for (int i = 1; i < vocab; i++) {
                if (logits[offset + i] > logits[offset + scalar]) {
                    scalar = i;
                }
            }
            assertThat(Argmax.first(logits, offset, vocab)).isEqualTo(scalar)
                    .isEqualTo(greedy.sample(logits, offset));
        }
    }
}
