package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.sampling.CandidateRequest;
import aether.llm.sampling.Candidates;
import aether.llm.server.GenerationListener.GeneratedToken;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.statistics.Statistics;
import org.junit.jupiter.api.Test;

/**
 * The serving engine's per-request samplers ({@link TokenSamplers#standard}) on candidates against the same samplers
 * on the whole logits row, as the engine drives them: {@link TokenSampler#candidateRequest}, candidates computed from
 * its adjustments ({@link Candidates#computeOnHost}, the CPU engine's default step), then {@link
 * TokenSampler#sampleCandidates} and the candidates' log-probabilities where the request decides, else the row. Tokens
 * and log-probabilities (chosen and top, over the raw logits) must be identical over several steps.
 */
class CandidateTokenSamplerProperties {

    @Property(tries = 300)
    void requestSamplersGiveTheSameTokensAndLogprobs(@ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int vocab = new int[] {20, 64, 300, 3000}[r.nextInt(4)];
        Map<Integer, Double> bias = new HashMap<>();
        if (r.nextInt(3) == 0) {
            bias.put(r.nextInt(vocab), r.nextBoolean() ? -100.0 : r.nextDouble() * 10 - 5);
        }
        var params = new SamplingParams(r.nextInt(5) == 0 ? 0 : 0.2 + r.nextDouble() * 1.5,
                r.nextBoolean() ? 1 : 0.3 + r.nextDouble() * 0.69, r.nextBoolean() ? 0 : 1 + r.nextInt(100),
                r.nextInt(3) == 0 ? 0.05 : 0, r.nextBoolean() ? 0 : r.nextDouble() * 2 - 1,
                r.nextBoolean() ? 0 : r.nextDouble() * 2 - 1, r.nextLong(), bias, false);
        int top = r.nextInt(3) == 0 ? -1 : r.nextInt(21);
        TokenSampler.Factory factory = TokenSamplers.standard(4096);
        TokenSampler reference = factory.create(params, vocab, 100);
        TokenSampler viaCandidates = factory.create(params, vocab, 100);
        float[] logits = new float[vocab];
        float[] copy = new float[vocab];
        Candidates candidates = new Candidates(1);
        int decided = 0;
        for (int step = 0; step < 8; step++) {
            boolean peaked = r.nextBoolean();
            for (int i = 0; i < vocab; i++) {
                logits[i] = (float) (r.nextGaussian() * (peaked ? 3 : 0.3));
            }
            System.arraycopy(logits, 0, copy, 0, vocab);
            int expected = reference.sample(copy, 0, vocab);
            GeneratedToken expectedInfo = top >= 0 ? Logprobs.of(logits, expected, top) : null;
            CandidateRequest request = viaCandidates.candidateRequest(top);
            int got;
            GeneratedToken info = null;
            if (request != null) {
                candidates.computeOnHost(logits, 0, vocab, request, 0);
            }
            if (request != null && request.decides(candidates, 0)) {
                got = viaCandidates.sampleCandidates(candidates, 0);
                info = top >= 0 ? Logprobs.of(candidates, 0, got, top, vocab) : null;
                decided++;
            } else {
                System.arraycopy(logits, 0, copy, 0, vocab);
                got = viaCandidates.sample(copy, 0, vocab);
                info = top >= 0 ? Logprobs.of(logits, got, top) : null;
            }
            assertThat(got).as("step %d of %s, top %d", step, params, top).isEqualTo(expected);
            if (top >= 0) {
                assertThat(info.logprob()).isEqualTo(expectedInfo.logprob());
                assertThat(info.topIds()).containsExactly(expectedInfo.topIds());
                assertThat(info.topLogprobs()).containsExactly(expectedInfo.topLogprobs());
            }
        }
        Statistics.label("decided steps of 8").collect(decided);
    }

    @Test
    void logprobsWithAnAdjustedRowOrBeyondTheCandidatesNeedTheLogits() {
        var biased = new SamplingParams(0.8, 1, 20, 0, 0, 0, 1, Map.of(5, 2.0), false);
        TokenSampler s = TokenSamplers.standard(512).create(biased, 1000, 10);
        assertThat(s.candidateRequest(-1)).isNotNull();
        assertThat(s.candidateRequest(3)).as("log-probabilities of raw logits, bias on the row").isNull();
        var plain = new SamplingParams(0.8, 1, 20, 0, 0, 0, 1, Map.of(), false);
        TokenSampler p = TokenSamplers.standard(512).create(plain, 1000, 10);
        assertThat(p.candidateRequest(5)).isNotNull();
        assertThat(p.candidateRequest(Candidates.K + 1)).isNull();
        // a temperature-only request samples over the whole vocabulary: decided by the candidates' draw, with the
        // sampler's next uniform and 1/T
        var wide = new SamplingParams(0.8, 1, 0, 0, 0, 0, 1, Map.of(), false);
        CandidateRequest full = TokenSamplers.standard(512).create(wide, 1000, 10).candidateRequest(-1);
        assertThat(full).isNotNull();
        assertThat(full.drawUniform()).isEqualTo(new java.util.SplittableRandom(1).nextDouble());
        assertThat(full.drawInverseTemperature()).isEqualTo(1.0 / 0.8f);
        assertThat(p.candidateRequest(-1).drawUniform()).as("top-k: no draw over the whole row").isNaN();
    }
}
