package aether.llm.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class TokenLogprobsTest {

    @Test
    void shouldReportTheLogSoftmaxOfTheRawLogitsForChosenAndTopTokens() {
        Random r = new Random(9);
        int vocab = 777;
        float[] logits = new float[vocab + 10];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) (r.nextGaussian() * 6);
        }
        int offset = 10;
        logits[offset + 400] = 30f;
        logits[offset + 12] = 28f;
        logits[offset + 700] = 28f;   // tie: 12 before 700
        double max = 30;
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            sum += Math.exp(logits[offset + i] - max);
        }
        double logZ = max + Math.log(sum);
        TokenLogprobs lp = new TokenLogprobs(20);
        lp.compute(logits, offset, vocab, 5, 6);
        assertThat(lp.count()).isEqualTo(6);
        assertThat(lp.topId(0)).isEqualTo(400);
        assertThat(lp.topId(1)).isEqualTo(12);
        assertThat(lp.topId(2)).isEqualTo(700);
        for (int i = 0; i < 6; i++) {
            assertThat(lp.topLogprob(i)).isCloseTo(logits[offset + lp.topId(i)] - logZ, within(1e-12));
            if (i > 0) {
                assertThat(lp.topLogprob(i)).isLessThanOrEqualTo(lp.topLogprob(i - 1));
            }
        }
        for (int i = 0; i < vocab; i++) {
            boolean inTop = false;
            for (int j = 0; j < 6; j++) {
                inTop |= lp.topId(j) == i;
            }
            if (!inTop) {
                assertThat(logits[offset + i]).isLessThanOrEqualTo(logits[offset + lp.topId(5)]);
            }
        }
        assertThat(lp.chosen()).isEqualTo(5);
        assertThat(lp.chosenLogprob()).isCloseTo(logits[offset + 5] - logZ, within(1e-12));
        double total = 0;
        for (int i = 0; i < vocab; i++) {
            lp.compute(logits, offset, vocab, i, 0);
            total += Math.exp(lp.chosenLogprob());
        }
        assertThat(total).isCloseTo(1.0, within(1e-9));
    }

    @Test
    void shouldRejectMoreTopEntriesThanItsCapacity() {
        assertThatThrownBy(() -> new TokenLogprobs(2).compute(new float[5], 0, 5, 0, 3))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("top 3");
    }
}
