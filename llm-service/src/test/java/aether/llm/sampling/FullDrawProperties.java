package aether.llm.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.statistics.Statistics;
import org.junit.jupiter.api.Test;

/**
 * The draw over the whole vocabulary from {@link Candidates} (a temperature with no top-k, top-p or min-p: the OpenAI
 * default) against {@link Sampler#sample} on the whole row: the sampler tells its next uniform before the step ({@link
 * Sampler#fullDrawUniform}), the candidates are computed with it ({@link Candidates#computeOnHost}, in the device
 * kernel's summation order), and where their draw is decided {@link Sampler#sampleCandidates} must give the reference's
 * token and leave the same random stream. Rows where rounding could matter (the target on a cumulative boundary) are
 * built on purpose and must fall back to the logits.
 */
class FullDrawProperties {

    private static final int[] VOCABS = {1, 2, 33, 64, 65, 1000, 32_000, 128_256};

    @Property(tries = 120)
    void theCandidatesDrawGivesTheRowsTokenAndLeavesTheSameStream(@ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int vocab = VOCABS[r.nextInt(VOCABS.length)];
        SamplerConfig config = fullDrawConfig(r, vocab);
        Sampler reference = new Sampler(config, vocab);
        Sampler viaCandidates = new Sampler(config, vocab);
        assertThat(viaCandidates.isFullDraw()).isTrue();
        assertThat(viaCandidates.candidatesMayDecide()).isTrue();
        for (int p = r.nextInt(6); p > 0; p--) {   // prompt tokens counted by the penalties
            int t = r.nextInt(vocab);
            reference.accept(t);
            viaCandidates.accept(t);
        }
        int steps = vocab > 10_000 ? 4 : 24;
        Candidates candidates = new Candidates(2);
        LogitAdjustments adjustments = new LogitAdjustments();
        float[] logits = new float[2 * vocab];
        int undecided = 0;
        int past = 0;
        for (int step = 0; step < steps; step++) {
            int row = step & 1;
            fillLogits(r, logits, row * vocab, vocab);
            viaCandidates.adjustments(adjustments);
            double u = viaCandidates.fullDrawUniform();
            assertThat(viaCandidates.fullDrawUniform()).as("told twice").isEqualTo(u);
            candidates.computeOnHost(logits, row * vocab, vocab, adjustments, row, false, u,
                    viaCandidates.inverseTemperature());
            boolean decides = viaCandidates.candidatesDecide(candidates, row);
            int expected;
            try {
                expected = reference.sample(logits, row * vocab);
            } catch (IllegalStateException e) {   // NaN, +Infinity or every token banned: the host path reports it
                assertThat(decides).as("a row the host path rejects (%s)", e.getMessage()).isFalse();
                assertThat(candidates.drawDecided(row)).isFalse();
                return;
            }
            String what = "step " + step + ", " + config + ", vocab " + vocab;
            int got;
            if (candidates.drawDecided(row)) {
                assertThat(candidates.drawnId(row)).as(what).isEqualTo(expected);
                assertThat(decides).as(what).isTrue();
                got = viaCandidates.sampleCandidates(candidates, row);
                past += Arrays.binarySearch(sortedIds(candidates, row), got) < 0 ? 1 : 0;
            } else {
                // the target within 1e-9 of the total of a boundary: below 2e-9 per token holding more than 2e-9 of
                // the mass (~2.6e-4 for a flat row of 128,256); a vocabulary within the candidates still decides
                undecided++;
                assertThat(decides).as(what).isEqualTo(vocab <= Candidates.K);
                got = decides ? viaCandidates.sampleCandidates(candidates, row) : viaCandidates.sample(logits, row * vocab);
            }
            assertThat(got).as(what).isEqualTo(expected);
            reference.accept(expected);
            viaCandidates.accept(got);
        }
        assertThat(undecided).as("draws left to the row").isLessThanOrEqualTo(1);
        // the same stream: both samplers' next numbers are the generator's (steps + 1)-th
        SplittableRandom stream = new SplittableRandom(config.seed());
        for (int i = 0; i < steps; i++) {
            stream.nextDouble();
        }
        double next = stream.nextDouble();
        assertThat(reference.fullDrawUniform()).isEqualTo(next);
        assertThat(viaCandidates.fullDrawUniform()).isEqualTo(next);
        Statistics.label("vocab").collect(vocab);
        Statistics.label("tokens past the 64 candidates").collect(past > 0);
    }

    /**
     * A row whose cumulative sum at one id equals the target to ~1e-10 of the total: the draw must not be decided
     * (another order or another exp could put the crossing on either side), the sampler falls back to the row, and
     * both samplers go on with the same stream.
     */
    @Property(tries = 100)
    void aTargetOnABoundaryFallsBackToTheRow(@ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float temperature = (float) (0.1 + r.nextDouble() * 1.9);
        // the sampler's uniform u is given by its seed; the row: k ids of logit 0 (term 1), then one of term f, then
        // logit 0 again, so that k + f = u * (vocab - 1 + f): f = (u * (vocab - 1) - k) / (1 - u), k = floor(u *
        // (vocab - 1)); a seed and a vocabulary that put f in [0.1, 0.9] (f's float logit then moves the sum by ~1e-8)
        SamplerConfig config;
        int vocab;
        int boundary;
        double f;
        int attempts = 0;
        do {
            config = SamplerConfig.greedy().withTemperature(temperature).withSeed(r.nextLong());
            vocab = 200 + r.nextInt(3000);
            double u = new Sampler(config, vocab).fullDrawUniform();
            boundary = (int) Math.floor(u * (vocab - 1));
            f = (u * (vocab - 1) - boundary) / (1 - u);
            assertThat(++attempts).as("a seed that allows such a row").isLessThan(10_000);
        } while (!(f >= 0.1 && f <= 0.9));
        float[] logits = new float[vocab];
        logits[boundary] = (float) (Math.log(f) * temperature);   // exp((v - 0) * (1 / T)) = f
        Sampler viaCandidates = new Sampler(config, vocab);
        Sampler reference = new Sampler(config, vocab);
        var adjustments = new LogitAdjustments();
        viaCandidates.adjustments(adjustments);
        var c = new Candidates(1);
        c.computeOnHost(logits, 0, vocab, adjustments, 0, false, viaCandidates.fullDrawUniform(),
                viaCandidates.inverseTemperature());
        assertThat(c.drawDecided(0)).as("target on the boundary after id %d of %d", boundary, vocab).isFalse();
        assertThat(c.drawnId(0)).isIn(boundary, boundary + 1);
        assertThat(viaCandidates.candidatesDecide(c, 0)).isFalse();
        int expected = reference.sample(logits, 0);
        assertThat(viaCandidates.sample(logits, 0)).isEqualTo(expected);
        assertThat(viaCandidates.fullDrawUniform()).as("the same stream").isEqualTo(reference.fullDrawUniform());
        Statistics.label("attempts").collect(attempts < 10 ? "< 10" : "10+");
    }

    @Test
    void theSamplerTellsItsNextDrawWithoutChangingTheSequence() {
        SamplerConfig config = SamplerConfig.greedy().withTemperature(1f).withSeed(42);
        int vocab = 500;
        float[] logits = new float[vocab];
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < vocab; i++) {
            logits[i] = (float) r.nextGaussian();
        }
        Sampler plain = new Sampler(config, vocab);
        Sampler told = new Sampler(config, vocab);
        SplittableRandom stream = new SplittableRandom(42);
        for (int t = 0; t < 20; t++) {
            double u = told.fullDrawUniform();
            assertThat(u).isEqualTo(stream.nextDouble());
            if (t % 3 == 0) {
                assertThat(told.fullDrawUniform()).isEqualTo(u);
            }
            assertThat(told.sample(logits, 0)).isEqualTo(plain.sample(logits, 0));
        }
        // reset forgets a told number: the first draws repeat
        told.fullDrawUniform();
        told.reset();
        assertThat(told.fullDrawUniform()).isEqualTo(new SplittableRandom(42).nextDouble());
        // a vocabulary of one token: sample's n == 1 path consumes the told number too
        Sampler single = new Sampler(config, 1);
        double first = single.fullDrawUniform();
        assertThat(single.sample(new float[] {0.5f}, 0)).isZero();
        assertThat(single.fullDrawUniform()).isNotEqualTo(first).isEqualTo(secondOf(42));
        // only a full draw tells: greedy, top-k, top-p and min-p do not
        assertThat(new Sampler(SamplerConfig.greedy(), vocab).fullDrawUniform()).isNaN();
        assertThat(new Sampler(config.withTopK(40), vocab).fullDrawUniform()).isNaN();
        assertThat(new Sampler(config.withTopP(0.9f), vocab).fullDrawUniform()).isNaN();
        assertThat(new Sampler(config.withMinP(0.05f), vocab).fullDrawUniform()).isNaN();
        assertThat(new Sampler(config.withTopK(vocab), vocab).isFullDraw()).as("top-k of the whole vocabulary").isTrue();
    }

    @Test
    void aDrawIsTakenOnlyWithThisSamplersNextUniformAndTemperature() {
        int vocab = 1000;
        float[] logits = new float[vocab];
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 0; i < vocab; i++) {
            logits[i] = (float) r.nextGaussian() * 2;
        }
        SamplerConfig config = SamplerConfig.greedy().withTemperature(0.7f).withSeed(7);
        Sampler s = new Sampler(config, vocab);
        var none = new LogitAdjustments();
        var c = new Candidates(1);
        double u = s.fullDrawUniform();
        c.computeOnHost(logits, 0, vocab, none, 0, false, u, s.inverseTemperature());
        assertThat(s.candidatesDecide(c, 0)).isTrue();
        c.computeOnHost(logits, 0, vocab, none, 0, false, u == 0.5 ? 0.25 : 0.5, s.inverseTemperature());
        assertThat(c.drawDecided(0)).isTrue();
        assertThat(s.candidatesDecide(c, 0)).as("another uniform").isFalse();
        c.computeOnHost(logits, 0, vocab, none, 0, false, u, 1.0);
        assertThat(s.candidatesDecide(c, 0)).as("another temperature").isFalse();
        c.computeOnHost(logits, 0, vocab, none, 0, false);
        assertThat(c.drawnId(0)).isEqualTo(-1);
        assertThat(c.drawUniform(0)).isNaN();
        assertThat(s.candidatesDecide(c, 0)).as("no draw asked").isFalse();
        c.computeOnHost(logits, 0, vocab, none, 0, false, u, s.inverseTemperature());
        s.reset();   // the told number is forgotten, but the generator restarts at it: still this sampler's next
        assertThat(s.candidatesDecide(c, 0)).isTrue();
        s.sample(logits, 0);
        assertThat(s.candidatesDecide(c, 0)).as("after the draw was used").isFalse();
        assertThatThrownBy(() -> s.sampleCandidates(c, 0)).hasMessageContaining("candidatesDecide is false");
    }

    /** NaN and +Infinity rows are flagged and never decided by the draw; bad draw arguments are refused. */
    @Test
    void flaggedRowsAndBadDrawsStayOnTheHost() {
        int vocab = 300;
        SamplerConfig config = SamplerConfig.greedy().withTemperature(1f).withSeed(1);
        var none = new LogitAdjustments();
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
            float[] logits = new float[vocab];
            logits[123] = bad;
            Sampler s = new Sampler(config, vocab);
            var c = new Candidates(1);
            c.computeOnHost(logits, 0, vocab, none, 0, false, s.fullDrawUniform(), s.inverseTemperature());
            assertThat(c.flagged(0)).isTrue();
            assertThat(c.drawDecided(0)).isFalse();
            assertThat(s.candidatesDecide(c, 0)).isFalse();
            assertThatThrownBy(() -> s.sample(logits, 0)).hasMessageContaining("token 123");
        }
        // every token banned: no crossing, the host path throws its error
        float[] banned = new float[vocab];
        Arrays.fill(banned, Float.NEGATIVE_INFINITY);
        Sampler s = new Sampler(config, vocab);
        var c = new Candidates(1);
        c.computeOnHost(banned, 0, vocab, none, 0, false, s.fullDrawUniform(), s.inverseTemperature());
        assertThat(c.drawnId(0)).isEqualTo(-1);
        assertThat(s.candidatesDecide(c, 0)).isFalse();
        float[] ok = new float[vocab];
        assertThatThrownBy(() -> c.computeOnHost(ok, 0, vocab, none, 0, false, 1.0, 1.0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("uniform 1.0");
        assertThatThrownBy(() -> c.computeOnHost(ok, 0, vocab, none, 0, false, -0.5, 1.0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("uniform -0.5");
        assertThatThrownBy(() -> c.computeOnHost(ok, 0, vocab, none, 0, false, 0.5, Double.POSITIVE_INFINITY))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("inverse temperature Infinity");
    }

    /** The device layout's draw words are read, and a decided draw without an id is refused. */
    @Test
    void theDevicesDrawIsRead() {
        int[] words = new int[Candidates.DEVICE_WORDS];
        int k = Candidates.K;
        words[0] = 9;
        words[k] = Float.floatToIntBits(3f);
        words[2 * k + 3] = 1;
        words[2 * k + 4] = 777;
        words[2 * k + 5] = 1;
        words[2 * k + 6] = Float.floatToIntBits(-2.5f);
        long u = Double.doubleToLongBits(0.375);
        long t = Double.doubleToLongBits(1.25);
        words[2 * k + 8] = (int) u;
        words[2 * k + 9] = (int) (u >>> 32);
        words[2 * k + 10] = (int) t;
        words[2 * k + 11] = (int) (t >>> 32);
        var c = new Candidates(1);
        c.readDevice(0, words, 0);
        assertThat(c.drawnId(0)).isEqualTo(777);
        assertThat(c.drawDecided(0)).isTrue();
        assertThat(c.drawnValue(0)).isEqualTo(-2.5f);
        assertThat(c.drawUniform(0)).isEqualTo(0.375);
        assertThat(c.drawInverseTemperature(0)).isEqualTo(1.25);
        long nan = Double.doubleToLongBits(Double.NaN);
        words[2 * k + 8] = (int) nan;
        words[2 * k + 9] = (int) (nan >>> 32);
        c.readDevice(0, words, 0);
        assertThat(c.drawUniform(0)).as("no draw asked").isNaN();
        words[2 * k + 4] = -1;
        assertThatThrownBy(() -> c.readDevice(0, words, 0)).hasMessageContaining("device draw of id -1, decided 1");
    }

    private static int[] sortedIds(Candidates c, int row) {
        int[] ids = new int[c.width(row)];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = c.id(row, i);
        }
        Arrays.sort(ids);
        return ids;
    }

    private static double secondOf(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        r.nextDouble();
        return r.nextDouble();
    }

    /** A temperature in [0.1, 2], no filter (or top-k of the whole vocabulary), sometimes bias and penalties. */
    static SamplerConfig fullDrawConfig(SplittableRandom r, int vocab) {
        float temperature = (float) (0.1 + r.nextDouble() * 1.9);
        int topK = r.nextInt(6) == 0 ? vocab + r.nextInt(3) : 0;
        boolean penalties = r.nextBoolean();
        Map<Integer, Float> bias = new HashMap<>();
        for (int b = r.nextBoolean() ? 0 : r.nextInt(4); b > 0; b--) {
            bias.put(r.nextInt(vocab), switch (r.nextInt(4)) {
                case 0 -> Float.NEGATIVE_INFINITY;
                default -> (float) (r.nextDouble() * 10 - 5);
            });
        }
        return new SamplerConfig(temperature, topK, 1f, 0f, penalties ? (float) (0.5 + r.nextDouble() * 1.5) : 1f,
                penalties ? (float) (r.nextDouble() * 2 - 1) : 0f, penalties ? (float) (r.nextDouble() * 2 - 1) : 0f,
                penalties ? 1 + r.nextInt(64) : 0, bias, r.nextLong());
    }

    /** Spread, nearly flat, peaked or tied rows, sometimes with -Infinity bans, rarely a NaN or +Infinity. */
    static void fillLogits(SplittableRandom r, float[] logits, int offset, int vocab) {
        int kind = r.nextInt(5);
        double scale = 0.2 + r.nextDouble() * 6;
        for (int i = 0; i < vocab; i++) {
            logits[offset + i] = switch (kind) {
                case 0 -> r.nextInt(4);
                case 1 -> (float) (r.nextGaussian() * 0.05);
                default -> (float) (r.nextGaussian() * scale);
            };
        }
        if (kind == 4) {
            for (int p = 1 + r.nextInt(4); p > 0; p--) {
                logits[offset + r.nextInt(vocab)] = (float) (10 + r.nextDouble() * 10);
            }
        }
        if (r.nextInt(4) == 0) {
            for (int b = r.nextInt(vocab / 2 + 1); b > 0; b--) {
                logits[offset + r.nextInt(vocab)] = Float.NEGATIVE_INFINITY;
            }
        }
        if (r.nextInt(60) == 0) {
            logits[offset + r.nextInt(vocab)] = r.nextBoolean() ? Float.NaN : Float.POSITIVE_INFINITY;
        }
    }
}
