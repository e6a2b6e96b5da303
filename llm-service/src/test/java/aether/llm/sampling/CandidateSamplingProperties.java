package aether.llm.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.statistics.Statistics;
import org.junit.jupiter.api.Test;

/**
 * Sampling from {@link Candidates} against sampling from the whole logits row ({@link Sampler#sample}, the CPU engine's
 * reference): two samplers with the same config and seed, one fed the logits, the other the candidates (computed on
 * the host, as the CPU engine's default step does) whenever {@link Sampler#candidatesDecide} says they decide, else
 * the logits. Over several steps the tokens must be identical, which also checks that both consumed the same random
 * draws. Random vocabularies (below, at and above K), logits (spread, ties, peaks, bans, signed zeros), temperatures,
 * top-k, top-p, min-p, repetition/presence/frequency penalties with windows, and logit biases (bans included).
 */
class CandidateSamplingProperties {

    @Property(tries = 400)
    void candidatesGiveTheSameTokensAsTheWholeRow(@ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int vocab = new int[] {3, 40, 64, 65, 200, 1000, 4000}[r.nextInt(7)];
        SamplerConfig config = randomConfig(r, vocab);
        Sampler reference = new Sampler(config, vocab);
        Sampler viaCandidates = new Sampler(config, vocab);
        for (int p = r.nextInt(6); p > 0; p--) {   // prompt tokens counted by the penalties
            int t = r.nextInt(vocab);
            reference.accept(t);
            viaCandidates.accept(t);
        }
        Candidates candidates = new Candidates(2);
        Candidates withoutSum = new Candidates(2);
        LogitAdjustments adjustments = new LogitAdjustments();
        float[] logits = new float[2 * vocab];
        int decided = 0;
        for (int step = 0; step < 6; step++) {
            int row = step & 1;   // a row other than 0 too
            fillLogits(r, logits, row * vocab, vocab);
            viaCandidates.adjustments(adjustments);
            double u = viaCandidates.fullDrawUniform();   // NaN unless the draw runs over the whole vocabulary
            candidates.computeOnHost(logits, row * vocab, vocab, adjustments, row, true, u,
                    viaCandidates.inverseTemperature());
            boolean decides = viaCandidates.candidatesDecide(candidates, row);
            assertThat(viaCandidates.candidatesDecide(candidates, row)).as("asked again").isEqualTo(decides);
            if (!viaCandidates.candidatesNeedExpSum()) {   // then the sum (NaN without it) must not matter
                withoutSum.computeOnHost(logits, row * vocab, vocab, adjustments, row, false, u,
                        viaCandidates.inverseTemperature());
                assertThat(viaCandidates.candidatesDecide(withoutSum, row)).as("without the sum").isEqualTo(decides);
            }
            if (decides) {
                assertThat(viaCandidates.candidatesMayDecide()).isTrue();
            }
            int expected;
            try {
                expected = reference.sample(logits, row * vocab);
            } catch (IllegalStateException e) {
                assertThat(decides).as("a row the host path rejects (%s)", e.getMessage()).isFalse();
                assertThatThrownBy(() -> viaCandidates.sample(logits, row * vocab)).hasMessage(e.getMessage());
                return;
            }
            int got = decides ? viaCandidates.sampleCandidates(candidates, row) : viaCandidates.sample(logits, row * vocab);
            assertThat(got).as("step %d, %s, vocab %d, decided %s", step, config, vocab, decides).isEqualTo(expected);
            decided += decides ? 1 : 0;
            reference.accept(expected);
            viaCandidates.accept(got);
        }
        Statistics.label("decided steps of 6").collect(decided);
    }

    /** Top-k up to K always decides (on rows without NaN or a total ban), whatever else the config says. */
    @Property(tries = 200)
    void topKUpToTheCandidatesAlwaysDecides(@ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int vocab = 100 + r.nextInt(3000);
        SamplerConfig config = randomConfig(r, vocab).withTopK(1 + r.nextInt(Candidates.K)).withTemperature(0.7f);
        Sampler sampler = new Sampler(config, vocab);
        float[] logits = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            logits[i] = (float) r.nextGaussian() * 3;
        }
        var adjustments = new LogitAdjustments();
        sampler.adjustments(adjustments);
        var c = new Candidates(1);
        c.computeOnHost(logits, 0, vocab, adjustments, 0);
        if (c.value(0, 0) != Float.NEGATIVE_INFINITY) {
            assertThat(sampler.candidatesDecide(c, 0)).isTrue();
        }
    }

    @Test
    void theFallbackCasesStayOnTheLogits() {
        int vocab = 1000;
        float[] flat = new float[vocab];
        float[] peaked = new float[vocab];
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < vocab; i++) {
            flat[i] = (float) r.nextGaussian() * 0.1f;
            peaked[i] = (float) r.nextGaussian();
        }
        peaked[17] = 30f;
        peaked[400] = 29f;
        SamplerConfig base = SamplerConfig.greedy().withTemperature(0.8f).withSeed(3);
        // top-k above K: the kept tokens go past the candidates
        assertDecides(base.withTopK(Candidates.K + 1), peaked, false);
        assertThat(new Sampler(base.withTopK(Candidates.K + 1), vocab).candidatesMayDecide()).isFalse();
        assertDecides(base.withTopK(Candidates.K), flat, true);
        // the draw over the whole vocabulary (no top-k, top-p or min-p): only by the candidates' draw
        assertDecides(base, peaked, false);
        assertThat(new Sampler(base, vocab).candidatesMayDecide()).isTrue();
        assertThat(new Sampler(base, Candidates.K).candidatesMayDecide()).isTrue();
        // top-p: decided when the candidates hold the mass, not on a flat row
        assertDecides(base.withTopP(0.9f), peaked, true);
        assertDecides(base.withTopP(0.9f), flat, false);
        // min-p alone: decided when every token above the bound is a candidate
        assertDecides(base.withMinP(0.05f), peaked, true);
        assertDecides(base.withMinP(0.05f), flat, false);
        // greedy with a bias: the first candidate
        assertDecides(SamplerConfig.greedy().withLogitBias(Map.of(3, 50f)), flat, true);
    }

    private static void assertDecides(SamplerConfig config, float[] logits, boolean expected) {
        Sampler s = new Sampler(config, logits.length);
        var adjustments = new LogitAdjustments();
        s.adjustments(adjustments);
        var c = new Candidates(1);
        c.computeOnHost(logits, 0, logits.length, adjustments, 0);
        assertThat(s.candidatesDecide(c, 0)).as("%s", config).isEqualTo(expected);
        if (expected) {
            assertThat(s.sampleCandidates(c, 0)).isEqualTo(new Sampler(config, logits.length).sample(logits, 0));
        } else {
            assertThatThrownBy(() -> s.sampleCandidates(c, 0)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("candidatesDecide is false");
        }
    }

    @Test
    void flaggedAndBannedRowsAreLeftToTheHostPath() {
        int vocab = 300;
        float[] logits = new float[vocab];
        logits[5] = Float.NaN;
        SamplerConfig config = SamplerConfig.defaults(1);
        var c = new Candidates(1);
        c.computeOnHost(logits, 0, vocab, new LogitAdjustments(), 0);
        assertThat(c.flagged(0)).isTrue();
        assertThat(new Sampler(config, vocab).candidatesDecide(c, 0)).isFalse();
        // every token banned by the bias: the host path throws its error
        float[] ok = new float[2];
        Sampler banned = new Sampler(config.withLogitBias(Map.of(0, Float.NEGATIVE_INFINITY, 1,
                Float.NEGATIVE_INFINITY)), 2);
        var adjustments = new LogitAdjustments();
        banned.adjustments(adjustments);
        var c2 = new Candidates(1);
        c2.computeOnHost(ok, 0, 2, adjustments, 0);
        assertThat(c2.flagged(0)).isFalse();
        assertThat(banned.candidatesDecide(c2, 0)).isFalse();
        // a penalty that overflows to +Infinity flags the row too
        Sampler overflow = new Sampler(config.withPenalties(1e-38f, 0f, 0f, 4), 2);
        overflow.accept(1);
        overflow.adjustments(adjustments);
        c2.computeOnHost(new float[] {0f, 1e10f}, 0, 2, adjustments, 0);
        assertThat(c2.flagged(0)).isTrue();
    }

    @Test
    void adjustmentsFollowTheSamplersPenaltyRules() {
        // bias first, then the repetition penalty divides a positive logit and multiplies a non-positive one, then
        // count * frequency + presence is subtracted; one entry per token, the window's repeats counted
        SamplerConfig config = SamplerConfig.defaults(1).withPenalties(2f, 0.5f, 0.25f, 8)
                .withLogitBias(Map.of(1, 3f, 9, -1f));
        Sampler s = new Sampler(config, 10);
        for (int t : new int[] {1, 2, 2, 4}) {
            s.accept(t);
        }
        var a = new LogitAdjustments();
        s.adjustments(a);
        Map<Integer, Float> adjusted = new HashMap<>();
        float[] raw = {0f, -1f, 4f, 0f, -3f, 0f, 0f, 0f, 0f, 2f};
        for (int i = 0; i < a.size(); i++) {
            adjusted.put(a.id(i), a.apply(i, raw[a.id(i)]));
        }
        assertThat(adjusted).containsOnlyKeys(1, 2, 4, 9);
        assertThat(adjusted.get(1)).isEqualTo((-1f + 3f) / 2f - (0.25f + 0.5f));   // biased to +2: divided
        assertThat(adjusted.get(2)).isEqualTo(4f / 2f - (2 * 0.25f + 0.5f));         // seen twice
        assertThat(adjusted.get(4)).isEqualTo(-3f * 2f - (0.25f + 0.5f));            // negative: multiplied
        assertThat(adjusted.get(9)).isEqualTo(1f);                                    // bias only
        assertThat(a.repeat()).isEqualTo(2f);
    }

    @Test
    void deviceLayoutIsRead() {
        int[] words = new int[Candidates.DEVICE_WORDS + 3];
        int at = 3;
        words[at] = 42;
        words[at + 1] = 7;
        words[at + Candidates.K] = Float.floatToIntBits(2.5f);
        words[at + Candidates.K + 1] = Float.floatToIntBits(-1f);
        long sum = Double.doubleToLongBits(123.25);
        words[at + 2 * Candidates.K] = (int) sum;
        words[at + 2 * Candidates.K + 1] = (int) (sum >>> 32);
        words[at + 2 * Candidates.K + 2] = 0;
        words[at + 2 * Candidates.K + 3] = 2;
        var c = new Candidates(2);
        c.readDevice(1, words, at);
        assertThat(c.width(1)).isEqualTo(2);
        assertThat(c.id(1, 0)).isEqualTo(42);
        assertThat(c.id(1, 1)).isEqualTo(7);
        assertThat(c.value(1, 1)).isEqualTo(-1f);
        assertThat(c.expSum(1)).isEqualTo(123.25);
        assertThat(c.flagged(1)).isFalse();
        words[at + 2 * Candidates.K + 3] = Candidates.K + 1;
        assertThatThrownBy(() -> c.readDevice(0, words, at)).hasMessageContaining("width 65");
    }

    static SamplerConfig randomConfig(SplittableRandom r, int vocab) {
        float temperature = r.nextInt(5) == 0 ? 0f : (float) (0.1 + r.nextDouble() * 1.9);
        int topK = switch (r.nextInt(5)) {
            case 0, 1 -> 0;
            case 2, 3 -> 1 + r.nextInt(Candidates.K);
            default -> Candidates.K + 1 + r.nextInt(vocab + 10);
        };
        float topP = switch (r.nextInt(5)) {
            case 0, 1 -> 1f;
            case 2 -> 0.99999f;
            default -> (float) (0.05 + r.nextDouble() * 0.94);
        };
        float minP = r.nextBoolean() ? 0f : (float) (0.001 + r.nextDouble() * 0.5);
        float repeat = r.nextBoolean() ? 1f : (float) (0.5 + r.nextDouble() * 1.5);
        float presence = r.nextBoolean() ? 0f : (float) (r.nextDouble() * 4 - 2);
        float frequency = r.nextBoolean() ? 0f : (float) (r.nextDouble() * 4 - 2);
        int lastN = r.nextInt(3) == 0 ? 0 : 1 + r.nextInt(64);
        Map<Integer, Float> bias = new HashMap<>();
        for (int b = r.nextInt(4); b > 0; b--) {
            float v = switch (r.nextInt(6)) {
                case 0 -> Float.NEGATIVE_INFINITY;
                case 1 -> 100f;
                default -> (float) (r.nextDouble() * 10 - 5);
            };
            bias.put(r.nextInt(vocab), v);
        }
        return new SamplerConfig(temperature, topK, topP, minP, repeat, presence, frequency, lastN, bias, r.nextLong());
    }

    static void fillLogits(SplittableRandom r, float[] logits, int offset, int vocab) {
        int kind = r.nextInt(5);
        double scale = 0.2 + r.nextDouble() * 6;
        for (int i = 0; i < vocab; i++) {
            logits[offset + i] = switch (kind) {
                case 0 -> r.nextInt(4);                              // many ties
                case 1 -> (float) (r.nextGaussian() * 0.05);        // nearly flat
                default -> (float) (r.nextGaussian() * scale);
            };
        }
        if (kind == 4) {   // a few peaks
            for (int p = 1 + r.nextInt(4); p > 0; p--) {
                logits[offset + r.nextInt(vocab)] = (float) (10 + r.nextDouble() * 10);
            }
        }
        if (r.nextInt(4) == 0) {
            for (int b = r.nextInt(vocab / 2 + 1); b > 0; b--) {
                logits[offset + r.nextInt(vocab)] = Float.NEGATIVE_INFINITY;
            }
        }
        if (r.nextInt(8) == 0) {
            logits[offset + r.nextInt(vocab)] = -0f;
            logits[offset + r.nextInt(vocab)] = 0f;
        }
        if (r.nextInt(40) == 0) {
            logits[offset + r.nextInt(vocab)] = r.nextBoolean() ? Float.NaN : Float.POSITIVE_INFINITY;
        }
    }
}
