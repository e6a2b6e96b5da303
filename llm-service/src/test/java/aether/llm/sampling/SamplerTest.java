package aether.llm.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SamplerTest {

    private static float[] gaussian(long seed, int n, double scale) {
        Random r = new Random(seed);
        float[] logits = new float[n];
        for (int i = 0; i < n; i++) {
            logits[i] = (float) (r.nextGaussian() * scale);
        }
        return logits;
    }

    private static SamplerConfig plain(float temperature, long seed) {
        return SamplerConfig.greedy().withTemperature(temperature).withSeed(seed);
    }

    /** Token ids sorted by (logit desc, id asc), the order the sampler promises. */
    private static Integer[] order(float[] l) {
        Integer[] ids = new Integer[l.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = i;
        }
        Arrays.sort(ids, Comparator.<Integer>comparingDouble(i -> -l[i]).thenComparingInt(i -> i));
        return ids;
    }

    private static int[] candidates(Sampler s, float[] logits) {
        int n = s.filter(logits, 0);
        return Arrays.copyOf(sWorkIndex(s), n);
    }

    private static int[] sWorkIndex(Sampler s) {
        try {
            var f = Sampler.class.getDeclaredField("ws");
            f.setAccessible(true);
            return ((SamplingWorkspace) f.get(s)).index;
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    private static float[] adjusted(Sampler s, float[] logits) {
        s.filter(logits, 0);
        try {
            var f = Sampler.class.getDeclaredField("ws");
            f.setAccessible(true);
            return ((SamplingWorkspace) f.get(s)).work.clone();
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void shouldPickTheArgmaxWithTiesToTheLowerIdWhenGreedy() {
        for (int trial = 0; trial < 200; trial++) {
            float[] logits = gaussian(trial, 1 + trial * 7, 3);
            if (trial % 3 == 0 && logits.length > 4) {
                float top = order(logits)[0] == null ? 0 : logits[order(logits)[0]];
                logits[logits.length - 1] = top;  // a tie with a higher id
            }
            Sampler s = new Sampler(SamplerConfig.greedy(), logits.length);
            assertThat(s.sample(logits, 0)).isEqualTo(order(logits)[0]);
        }
        float[] offsetLogits = {9, 9, 1, 7, 2, 7};
        assertThat(new Sampler(SamplerConfig.greedy(), 3).sample(offsetLogits, 3)).as("offset").isEqualTo(0);
    }

    @Test
    void shouldNeverSampleOutsideTheTopKAndFollowTheirSoftmax() {
        float[] logits = gaussian(7, 500, 2);
        int k = 7;
        float temperature = 1.5f;
        Sampler s = new Sampler(plain(temperature, 99).withTopK(k), logits.length);
        Integer[] sorted = order(logits);
        Map<Integer, Integer> rank = new java.util.HashMap<>();
        for (int i = 0; i < k; i++) {
            rank.put(sorted[i], i);
        }
        int draws = 40_000;
        long[] observed = new long[k];
        for (int i = 0; i < draws; i++) {
            int t = s.sample(logits, 0);
            assertThat(rank).containsKey(t);
            observed[rank.get(t)]++;
        }
        double[] expected = softmax(sorted, k, logits, temperature);
        assertChiSquareFits(observed, expected, draws);
    }

    @Test
    void shouldFollowTheTemperatureSoftmaxWithoutFilters() {
        float[] logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.7f};
        for (float temperature : new float[] {0.5f, 1f, 2.5f}) {
            Sampler s = new Sampler(plain(temperature, 1234), logits.length);
            int draws = 50_000;
            long[] observed = new long[logits.length];
            for (int i = 0; i < draws; i++) {
                observed[s.sample(logits, 0)]++;
            }
            Integer[] ids = {0, 1, 2, 3, 4};
            assertChiSquareFits(observed, softmax(ids, ids.length, logits, temperature), draws);
        }
    }

    private static double[] softmax(Integer[] ids, int n, float[] logits, double temperature) {
        double[] p = new double[n];
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, logits[ids[i]]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            p[i] = Math.exp((logits[ids[i]] - max) / temperature);
            sum += p[i];
        }
        for (int i = 0; i < n; i++) {
            p[i] /= sum;
        }
        return p;
    }

    /** Pearson's chi-square against the expected probabilities, at significance 0.001 (df up to 9). */
    private static void assertChiSquareFits(long[] observed, double[] expected, int draws) {
        double[] critical = {10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88};
        double chi = 0;
        for (int i = 0; i < observed.length; i++) {
            double e = expected[i] * draws;
            chi += (observed[i] - e) * (observed[i] - e) / e;
        }
        assertThat(chi).as("chi-square of %s against %s", Arrays.toString(observed), Arrays.toString(expected))
                .isLessThan(critical[observed.length - 2]);
    }

    @Test
    void shouldCutTopPExactlyWhereTheCumulativeMassReachesP() {
        // probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 (shuffled ids)
        float[] logits = new float[5];
        double[] p = {0.125, 0.5, 0.0625, 0.25, 0.0625};
        for (int i = 0; i < p.length; i++) {
            logits[i] = (float) Math.log(p[i]);
        }
        assertThat(candidates(new Sampler(plain(1, 0).withTopP(0.45f), 5), logits)).containsExactly(1);
        assertThat(candidates(new Sampler(plain(1, 0).withTopP(0.7f), 5), logits)).containsExactly(1, 3);
        assertThat(candidates(new Sampler(plain(1, 0).withTopP(0.8f), 5), logits)).containsExactly(1, 3, 0);
        assertThat(candidates(new Sampler(plain(1, 0).withTopP(0.9f), 5), logits)).containsExactly(1, 3, 0, 2);
        assertThat(candidates(new Sampler(plain(1, 0).withTopP(1f), 5), logits)).hasSize(5);
    }

    @Test
    void shouldSortBeyondTheFirstPassWhenTopPNeedsMoreThan256Tokens() {
        float[] logits = new float[1000];
        Arrays.fill(logits, 0.25f);
        logits[999] = 3f;    // one clear favourite: 20.1 / (20.1 + 999 · 1) of the mass ≈ 0.0197
        Sampler s = new Sampler(plain(1, 0).withTopP(0.6f), logits.length);
        int[] kept = candidates(s, logits);
        // favourite + ceil((0.6 · Z - e^3) / e^0.25) uniform tokens, lowest ids first
        double z = Math.exp(3) + 999 * Math.exp(0.25);
        int uniform = (int) Math.ceil((0.6 * z - Math.exp(3)) / Math.exp(0.25));
        assertThat(kept).hasSize(1 + uniform);
        assertThat(kept[0]).isEqualTo(999);
        for (int i = 1; i < kept.length; i++) {
            assertThat(kept[i]).isEqualTo(i - 1);
        }
    }

    @Test
    void shouldKeepExactlyTheTokensAboveMinPTimesTheBestProbability() {
        float best = 5f;
        float[] logits = {
            best + (float) Math.log(0.2), best, best + (float) Math.log(0.09), 1f, best + (float) Math.log(0.11),
            best + (float) Math.log(0.105), -30f};
        assertThat(candidates(new Sampler(plain(1, 0).withMinP(0.1f), logits.length), logits))
                .containsExactlyInAnyOrder(0, 1, 4, 5);
        assertThat(candidates(new Sampler(plain(1, 0).withMinP(0.15f), logits.length), logits))
                .containsExactlyInAnyOrder(0, 1);
        assertThat(candidates(new Sampler(plain(1, 0).withMinP(1f), logits.length), logits)).containsExactly(1);
    }

    @Test
    void shouldApplyPenaltiesAsLlamaCppOverTheLastNAcceptedTokens() {
        float[] logits = {2f, -1f, 0.5f, 3f, 0f, 1f};
        SamplerConfig config = plain(1, 0).withPenalties(1.5f, 0.5f, 0.25f, 4);
        Sampler s = new Sampler(config, logits.length);
        for (int t : new int[] {5, 5, 0, 1, 1, 3}) {   // window of 4: 0, 1, 1, 3 (the 5s fell out)
            s.accept(t);
        }
        float[] work = adjusted(s, logits);
        assertThat(work[0]).isCloseTo(2f / 1.5f - (1 * 0.25f + 0.5f), within(1e-6f));
        assertThat(work[1]).isCloseTo(-1f * 1.5f - (2 * 0.25f + 0.5f), within(1e-6f));
        assertThat(work[3]).isCloseTo(3f / 1.5f - (1 * 0.25f + 0.5f), within(1e-6f));
        assertThat(work[2]).isEqualTo(0.5f);
        assertThat(work[4]).isEqualTo(0f);
        assertThat(work[5]).as("outside the window").isEqualTo(1f);
        // the same again: the shared counts were cleared after use
        assertThat(adjusted(s, logits)).containsExactly(work);

        Sampler greedy = new Sampler(SamplerConfig.greedy().withPenalties(10f, 0f, 0f, 1), logits.length);
        greedy.accept(3);
        assertThat(greedy.sample(logits, 0)).as("the repeated favourite is pushed below 2").isEqualTo(0);
    }

    @Test
    void shouldBanAndFavourTokensByLogitBias() {
        float[] logits = {0f, 4f, 3.9f, 1f};
        Sampler banned = new Sampler(plain(1, 5).withLogitBias(Map.of(1, Float.NEGATIVE_INFINITY)), 4);
        for (int i = 0; i < 5000; i++) {
            assertThat(banned.sample(logits, 0)).isNotEqualTo(1);
        }
        Sampler favoured = new Sampler(SamplerConfig.greedy().withLogitBias(Map.of(3, 3.5f)), 4);
        assertThat(favoured.sample(logits, 0)).isEqualTo(3);
        Sampler all = new Sampler(SamplerConfig.greedy().withLogitBias(Map.of(0, Float.NEGATIVE_INFINITY,
                1, Float.NEGATIVE_INFINITY, 2, Float.NEGATIVE_INFINITY, 3, Float.NEGATIVE_INFINITY)), 4);
        assertThatThrownBy(() -> all.sample(logits, 0)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("banned");
        assertThatThrownBy(() -> new Sampler(SamplerConfig.greedy().withLogitBias(Map.of(4, 1f)), 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token 4");
    }

    @Test
    void shouldRepeatTheSameTokensForTheSameSeedAndDifferForAnother() {
        float[] logits = gaussian(3, 300, 1);
        SamplerConfig config = SamplerConfig.defaults(42).withTopK(100).withMinP(0f).withPenalties(1.1f, 0.2f, 0.1f, 16);
        int[] first = draw(new Sampler(config, 300), logits, 300);
        int[] again = draw(new Sampler(config, 300), logits, 300);
        int[] other = draw(new Sampler(config.withSeed(43), 300), logits, 300);
        assertThat(again).containsExactly(first);
        assertThat(other).isNotEqualTo(first);
        Sampler reused = new Sampler(config, 300);
        draw(reused, logits, 17);
        reused.reset();
        assertThat(draw(reused, logits, 300)).as("after reset").containsExactly(first);
    }

    private static int[] draw(Sampler s, float[] logits, int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = s.sample(logits, 0);
            s.accept(out[i]);
        }
        return out;
    }

    /** Filters against a brute-force reference (full sort, float64 softmax) on random logits and configs. */
    @Test
    void shouldMatchABruteForceReferenceOnRandomLogitsAndConfigs() {
        Random r = new Random(2024);
        for (int trial = 0; trial < 400; trial++) {
            int vocab = 1 + r.nextInt(trial < 200 ? 40 : 3000);
            float[] logits = gaussian(trial, vocab, 0.5 + r.nextDouble() * 4);
            if (r.nextBoolean()) {   // ties and plateaus
                for (int i = 0; i < vocab; i++) {
                    logits[i] = Math.round(logits[i] * 2) / 2f;
                }
            }
            int topK = r.nextInt(3) == 0 ? 0 : 1 + r.nextInt(Math.max(1, vocab + 3));
            float topP = r.nextInt(3) == 0 ? 1f : 0.05f + 0.94f * r.nextFloat();
            float minP = r.nextInt(3) == 0 ? 0f : 0.3f * r.nextFloat();
            SamplerConfig config = plain(0.8f, trial).withTopK(topK).withTopP(topP).withMinP(minP);
            List<Integer> actual = Arrays.stream(candidates(new Sampler(config, vocab), logits)).boxed().toList();
            List<Integer> expected = reference(logits, topK, topP, minP);
            if (topP < 1f) {
                assertThat(actual).as("trial %d %s", trial, config).containsExactlyElementsOf(expected);
            } else {
                assertThat(actual).as("trial %d %s", trial, config).containsExactlyInAnyOrderElementsOf(expected);
            }
        }
    }

    private static List<Integer> reference(float[] logits, int topK, float topP, float minP) {
        List<Integer> c = new ArrayList<>(Arrays.asList(order(logits)));
        if (topK > 0 && topK < c.size()) {
            c = new ArrayList<>(c.subList(0, topK));
        }
        if (topP < 1f) {
            double max = logits[c.get(0)];
            double z = 0;
            for (int id : c) {
                z += Math.exp(logits[id] - max);
            }
            double cum = 0;
            int keep = c.size();
            for (int i = 0; i < c.size(); i++) {
                cum += Math.exp(logits[c.get(i)] - max) / z;
                if (cum >= topP) {
                    keep = i + 1;
                    break;
                }
            }
            c = new ArrayList<>(c.subList(0, keep));
        }
        if (minP > 0) {
            float max = Float.NEGATIVE_INFINITY;
            for (int id : c) {
                max = Math.max(max, logits[id]);
            }
            float bound = max + (float) Math.log(minP);
            c.removeIf(id -> logits[id] < bound);
        }
        return c;
    }

    @Test
    void shouldSelectAndSortLikeAFullSortOnAdversarialInputs() {
        Random r = new Random(1);
        for (int trial = 0; trial < 300; trial++) {
            int n = 1 + r.nextInt(2000);
            float[] key = new float[n];
            switch (trial % 4) {
                case 0 -> Arrays.fill(key, 1f);                                  // all equal
                case 1 -> { for (int i = 0; i < n; i++) { key[i] = i; } }        // ascending
                case 2 -> { for (int i = 0; i < n; i++) { key[i] = -i; } }       // descending
                default -> { for (int i = 0; i < n; i++) { key[i] = r.nextInt(5); } }
            }
            int[] idx = new int[n];
            for (int i = 0; i < n; i++) {
                idx[i] = i;
            }
            int k = 1 + r.nextInt(n);
            CandidateOrder.selectFirst(idx, n, k, key);
            CandidateOrder.sort(idx, 0, k, key);
            Integer[] expected = order(key);
            for (int i = 0; i < k; i++) {
                assertThat(idx[i]).as("trial %d position %d of %d", trial, i, k).isEqualTo(expected[i]);
            }
            Set<Integer> all = new HashSet<>();
            for (int v : idx) {
                all.add(v);
            }
            assertThat(all).hasSize(n);
        }
    }

    @Test
    void shouldRejectNaNAndPositiveInfinityLogitsAndBadConfigs() {
        assertThatThrownBy(() -> new Sampler(SamplerConfig.greedy(), 3).sample(new float[] {1, Float.NaN, 2}, 0))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("token 1");
        assertThatThrownBy(() -> new Sampler(plain(1, 0), 2).sample(new float[] {Float.POSITIVE_INFINITY, 0}, 0))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("token 0");
        assertThatThrownBy(() -> SamplerConfig.greedy().withTemperature(-0.1f)).hasMessageContaining("temperature");
        assertThatThrownBy(() -> SamplerConfig.greedy().withTopP(0f)).hasMessageContaining("top-p");
        assertThatThrownBy(() -> SamplerConfig.greedy().withMinP(1.5f)).hasMessageContaining("min-p");
        assertThatThrownBy(() -> SamplerConfig.greedy().withTopK(-1)).hasMessageContaining("top-k");
        assertThatThrownBy(() -> SamplerConfig.greedy().withPenalties(0f, 0, 0, 64)).hasMessageContaining("repeat penalty");
        assertThatThrownBy(() -> SamplerConfig.greedy().withLogitBias(Map.of(-1, 1f))).hasMessageContaining("logit bias");
        assertThatThrownBy(() -> new Sampler(SamplerConfig.greedy(), 3).sample(new float[2], 0))
                .isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void shouldNotAllocateWhileSampling() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        float[] logits = gaussian(11, 32_000, 3);
        Sampler s = new Sampler(SamplerConfig.defaults(1).withPenalties(1.1f, 0.1f, 0.1f, 64)
                .withLogitBias(Map.of(5, -2f)), logits.length);
        Sampler p = new Sampler(SamplerConfig.defaults(2).withTopK(0).withMinP(0f), logits.length);
        TokenLogprobs lp = new TokenLogprobs(5);
        for (int i = 0; i < 2000; i++) {   // warm up (JIT)
            s.accept(s.sample(logits, 0));
            p.accept(p.sample(logits, 0));
            lp.compute(logits, 0, logits.length, i % 100, 5);
        }
        long before = threads.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < 1000; i++) {
            s.accept(s.sample(logits, 0));
            p.accept(p.sample(logits, 0));
            lp.compute(logits, 0, logits.length, i % 100, 5);
        }
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        assertThat(allocated).as("bytes allocated by 1000 tokens").isLessThan(1024);
    }
}
