package aether.llm.sampling.bench;

import aether.llm.sampling.Argmax;
import aether.llm.sampling.Candidates;
import aether.llm.sampling.LogitAdjustments;
import aether.llm.sampling.Sampler;
import aether.llm.sampling.SamplerConfig;
import aether.llm.sampling.TokenLogprobs;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Cost of picking one token, per sampler configuration and vocabulary size (32,000 as Llama 2, 128,256 as Llama 3),
 * next to a plain argmax over the same logits as the floor (one pass over the vocabulary). A decode step of a 1B model
 * takes ~25 ms here, so sampling should stay well under 1% of it. Check {@code -prof gc}: 0 B/op.
 *
 * <pre>scripts/jmh llm-service SamplerBenchmark -prof gc</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
public class SamplerBenchmark {

    @Param({"32000", "128256"})
    int vocab;

    /**
     * greedy; llama.cpp's defaults (top-k 40, top-p 0.95, min-p 0.05, temp 0.8); top-p 0.9 alone; penalties too; the
     * OpenAI default (temperature 1, no filter: the draw over the whole vocabulary)
     */
    @Param({"greedy", "defaults", "topP", "penalties", "openai"})
    String config;

    float[] logits;
    Sampler sampler;
    TokenLogprobs logprobs;

    @Setup(Level.Trial)
    public void setUp() {
        Random r = new Random(42);
        logits = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            logits[i] = (float) (r.nextGaussian() * 3);
        }
        SamplerConfig c = switch (config) {
            case "greedy" -> SamplerConfig.greedy();
            case "defaults" -> SamplerConfig.defaults(1);
            case "topP" -> SamplerConfig.defaults(1).withTopK(0).withMinP(0f).withTopP(0.9f);
            case "penalties" -> SamplerConfig.defaults(1).withPenalties(1.1f, 0.5f, 0.5f, 64);
            case "openai" -> SamplerConfig.greedy().withTemperature(1f).withSeed(1);
            default -> throw new IllegalArgumentException(config);
        };
        sampler = new Sampler(c, vocab);
        for (int i = 0; i < 64; i++) {
            sampler.accept(r.nextInt(vocab));
        }
        logprobs = new TokenLogprobs(5);
        adjustments = new LogitAdjustments();
        sampler.adjustments(adjustments);
        candidates = new Candidates(1);
        candidates.computeOnHost(logits, 0, vocab, adjustments, 0);
        devicePrepared = new Candidates(1);
        fullDraw = sampler.isFullDraw();
        if (fullDraw) {
            sampler.reset();   // the draw of the sampler's first uniform (candidatesFromDevice restarts it per call)
        }
        devicePrepared.computeOnHost(logits, 0, vocab, adjustments, 0, true, sampler.fullDrawUniform(),
                sampler.inverseTemperature());
        if (fullDraw && !sampler.candidatesDecide(devicePrepared, 0)) {
            throw new IllegalStateException("the prepared draw does not decide the sampler's first token");
        }
    }

    boolean fullDraw;

    LogitAdjustments adjustments;
    Candidates candidates;
    Candidates devicePrepared;

    /**
     * The CPU engine's sampled row since device sampling: the candidates computed on the host from the row (the
     * {@code exp} pass only for top-p without top-k), then the token from them, or from the row where they cannot
     * tell. Compare with {@link #sample}.
     */
    @Benchmark
    public int candidatesOnHost() {
        sampler.adjustments(adjustments);
        candidates.computeOnHost(logits, 0, vocab, adjustments, 0, sampler.candidatesNeedExpSum(),
                sampler.fullDrawUniform(), sampler.inverseTemperature());
        return sampler.candidatesDecide(candidates, 0) ? sampler.sampleCandidates(candidates, 0)
                : sampler.sample(logits, 0);
    }

    /**
     * The host's share of a GPU engine's sampled row: adjustments for the upload, then the token from the device's
     * 64 candidates (here precomputed), or -1 where they cannot tell and the row would be downloaded. A full draw's
     * precomputed row holds the draw of the sampler's first uniform: the sampler restarts at it each call (a reset,
     * which allocates its new generator: 24 B/op of this config's figure are the benchmark's, not the engine's).
     */
    @Benchmark
    public int candidatesFromDevice() {
        if (fullDraw) {
            sampler.reset();
        }
        sampler.adjustments(adjustments);
        sampler.fullDrawUniform();   // the request's u, as TokenSamplers.Plain.candidateRequest tells the engine
        return sampler.candidatesDecide(devicePrepared, 0) ? sampler.sampleCandidates(devicePrepared, 0) : -1;
    }

    @Benchmark
    public int sample() {
        return sampler.sample(logits, 0);
    }

    @Benchmark
    public int argmaxFloor() {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** {@link Argmax#first}: the greedy sampler's argmax (the floor above without its NaN/+Infinity check). */
    @Benchmark
    public int argmaxFirst() {
        return Argmax.first(logits, 0, logits.length);
    }

    @Benchmark
    public double logprobsTop5() {
        logprobs.compute(logits, 0, vocab, 7, 5);
        return logprobs.chosenLogprob();
    }
}
