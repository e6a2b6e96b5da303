package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cuda.GpuFixture;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.InferenceModel.RowKind;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.llm.sampling.CandidateRequest;
import aether.llm.sampling.Candidates;
import aether.llm.sampling.LogitAdjustments;
import aether.llm.sampling.Sampler;
import aether.llm.sampling.SamplerConfig;
import aether.llm.synth.SynthSpec;
import aether.llm.synth.SyntheticModel;
import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded sampled generation on the GPU with the device's candidates ({@code sample_candidates}) on and off
 * ({@link CudaInferenceModel#deviceSampling}): two sets of 24 sequences of one model, fed the same prompts, each with
 * its own samplers of the same configs and seeds (top-k, top-p, min-p, penalties, biases and bans, greedy with a bias),
 * stepped with {@link RowKind#CANDIDATES} entries, set A with the candidates computed on the host from downloaded
 * logits, set B on the device. Every step the candidates must agree (ids and values bitwise, the sum to 1e-10: a row's
 * logits do not depend on the other rows of its pass) and so must the sampled tokens; rows the candidates cannot
 * decide come with their logits. Then a lone sequence through the single-token path the same way. Two of the
 * configs draw over the whole vocabulary (the device's draw with the samplers' next uniforms), and a second test
 * checks the OpenAI default's tokens from the device against the host sampler on the downloaded rows.
 */
@Tag("gpu")
@Timeout(300)
class CudaDeviceSamplingTest {

    private static final int SEQUENCES = 24;

    @TempDir
    Path dir;

    /** A plain {@link Sampler} as a candidate request (what the server's samplers do, without a server). */
    record SamplerRequest(Sampler sampler, LogitAdjustments adjustments) implements CandidateRequest {
        SamplerRequest(Sampler sampler) {
            this(sampler, new LogitAdjustments());
        }

        SamplerRequest next() {
            sampler.adjustments(adjustments);
            return this;
        }

        @Override
        public boolean decides(Candidates candidates, int row) {
            return sampler.candidatesDecide(candidates, row);
        }

        @Override
        public double drawUniform() {
            return sampler.fullDrawUniform();   // NaN unless the draw runs over the whole vocabulary
        }

        @Override
        public double drawInverseTemperature() {
            return sampler.inverseTemperature();
        }

        int sample(Candidates c, int row, float[] logits, int vocab) {
            int t = decides(c, row) ? sampler.sampleCandidates(c, row) : sampler.sample(logits, row * vocab);
            sampler.accept(t);
            return t;
        }
    }

    static SamplerConfig config(int i, int vocab) {
        SamplerConfig base = SamplerConfig.greedy().withTemperature(0.9f).withSeed(1000 + i);
        return switch (i % 8) {
            case 0 -> base.withTopK(40);
            case 1 -> base.withTopP(0.9f);                                   // flat synthetic rows: mostly the fallback
            case 2 -> base.withTopK(20).withPenalties(1.3f, 0.4f, 0.2f, 64);
            case 3 -> base.withTopK(64).withLogitBias(Map.of(i, 4f, (i * 7) % vocab, Float.NEGATIVE_INFINITY));
            case 4 -> base.withMinP(0.2f).withTopK(50).withTemperature(1.5f);
            case 5 -> base.withTemperature(1f);                              // the whole vocabulary: the device's draw
            case 6 -> base.withTemperature(0.6f).withPenalties(1.2f, 0.3f, 0.1f, 32)
                    .withLogitBias(Map.of(i, 2f, (i * 11) % vocab, Float.NEGATIVE_INFINITY));
            default -> SamplerConfig.greedy().withLogitBias(Map.of(3, 0.5f)).withPenalties(1.1f, 0f, 0f, 16);
        };
    }

    @Test
    void candidatesOnTheDeviceGiveTheSameTokensAsOnTheHost() throws IOException {
        GpuFixture.assumeGpu();
        long seed = System.nanoTime();
        System.out.println("seed " + seed);
        Path vocabFile = SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
        SynthSpec spec = new SynthSpec("synth-gpu-sampling", 2, 256, 512, 4, 2, 512, 10000f, 1e-5f, GgmlType.Q4_0, seed);
        Path file = dir.resolve("m.gguf");
        SyntheticModel.of(spec, vocabFile).write(file, 4, done -> {});
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(64).withMaxSequences(2 * SEQUENCES + 2);
        try (LoadedModel loaded = CudaModels.open(file, options)) {
            CudaInferenceModel g = (CudaInferenceModel) loaded.model();
            int vocab = g.config().vocabSize();
            SplittableRandom r = new SplittableRandom(seed);
            List<Sequence> a = new ArrayList<>(), b = new ArrayList<>();
            SamplerRequest[] ra = new SamplerRequest[SEQUENCES], rb = new SamplerRequest[SEQUENCES];
            int[][] next = new int[SEQUENCES][];
            for (int i = 0; i < SEQUENCES; i++) {
                a.add(g.newSequence());
                b.add(g.newSequence());
                ra[i] = new SamplerRequest(new Sampler(config(i, vocab), vocab));
                rb[i] = new SamplerRequest(new Sampler(config(i, vocab), vocab));
                next[i] = r.ints(r.nextInt(1, 6), 0, vocab).toArray();
            }
            float[] la = new float[SEQUENCES * vocab], lb = new float[SEQUENCES * vocab];
            RowKind[] kinds = new RowKind[SEQUENCES];
            Arrays.fill(kinds, RowKind.CANDIDATES);
            int[] argmax = new int[SEQUENCES];
            Candidates ca = new Candidates(SEQUENCES), cb = new Candidates(SEQUENCES);
            int decided = 0;
            for (int step = 0; step < 8; step++) {
                List<BatchEntry> ba = new ArrayList<>(), bb = new ArrayList<>();
                for (int i = 0; i < SEQUENCES; i++) {
                    ba.add(BatchEntry.of(a.get(i), next[i]));
                    bb.add(BatchEntry.of(b.get(i), next[i]));
                    ra[i].next();
                    rb[i].next();
                }
                Arrays.fill(lb, Float.NaN);
                g.deviceSampling(false);
                g.step(ba, la, kinds, argmax, ra, ca);
                g.deviceSampling(true);
                g.step(bb, lb, kinds, argmax, rb, cb);
                for (int i = 0; i < SEQUENCES; i++) {
                    assertSame(ca, cb, i, "step " + step + " entry " + i);
                    boolean decides = rb[i].decides(cb, i);
                    if (!decides) {
                        assertThat(Arrays.copyOfRange(lb, i * vocab, (i + 1) * vocab)).as("fallback logits")
                                .containsExactly(Arrays.copyOfRange(la, i * vocab, (i + 1) * vocab));
                    }
                    decided += decides ? 1 : 0;
                    int ta = ra[i].sample(ca, i, la, vocab);
                    int tb = rb[i].sample(cb, i, lb, vocab);
                    assertThat(tb).as("step %d entry %d (%s)", step, i, config(i, vocab)).isEqualTo(ta);
                    next[i] = new int[] {ta};
                }
            }
            assertThat(decided).as("rows decided on the device").isGreaterThan(SEQUENCES * 8 / 2);
            // a lone sequence: the single-token graph, then sample_candidates over its one row
            RowKind[] one = {RowKind.CANDIDATES};
            Candidates oa = new Candidates(1), ob = new Candidates(1);
            float[] fa = new float[vocab], fb = new float[vocab];
            for (int step = 0; step < 4; step++) {
                g.deviceSampling(false);
                g.step(List.of(BatchEntry.of(a.getFirst(), next[0])), fa, one, argmax,
                        new CandidateRequest[] {ra[0].next()}, oa);
                g.deviceSampling(true);
                g.step(List.of(BatchEntry.of(b.getFirst(), next[0])), fb, one, argmax,
                        new CandidateRequest[] {rb[0].next()}, ob);
                assertSame(oa, ob, 0, "lone step " + step);
                int ta = ra[0].sample(oa, 0, fa, vocab);
                assertThat(rb[0].sample(ob, 0, fb, vocab)).as("lone step %d", step).isEqualTo(ta);
                next[0] = new int[] {ta};
            }
            a.forEach(Sequence::close);
            b.forEach(Sequence::close);
        }
    }

    /**
     * The OpenAI default (temperature 1, no top-k, top-p or min-p) over a few seeds: every token taken from the device's
     * draw where it is decided, from the downloaded row otherwise, must be the token the host sampler picks from the
     * logits row of a twin sequence (downloaded with the device's sampling off), batched (16 sequences per step) and
     * through the single-token path; the device must decide nearly every token (a target falls within the margin
     * with a probability below 2e-9 per token of the vocabulary: ~6e-5 on these flat 32k rows).
     */
    @Test
    void theWholeVocabularyDrawOnTheDeviceGivesTheHostRowsTokens() throws IOException {
        GpuFixture.assumeGpu();
        long seed = System.nanoTime();
        System.out.println("seed " + seed);
        Path vocabFile = SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
        SynthSpec spec = new SynthSpec("synth-gpu-full-draw", 2, 256, 512, 4, 2, 512, 10000f, 1e-5f, GgmlType.Q4_0, seed);
        Path file = dir.resolve("full.gguf");
        SyntheticModel.of(spec, vocabFile).write(file, 4, done -> {});
        int n = 16;
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(64).withMaxSequences(2 * n + 2);
        try (LoadedModel loaded = CudaModels.open(file, options)) {
            CudaInferenceModel g = (CudaInferenceModel) loaded.model();
            g.deviceSampling(true);   // whatever -Daether.cuda.deviceSampling says: LOGITS rows are downloaded anyway
            int vocab = g.config().vocabSize();
            SplittableRandom r = new SplittableRandom(seed);
            List<Sequence> host = new ArrayList<>(), device = new ArrayList<>();
            Sampler[] reference = new Sampler[n];
            SamplerRequest[] viaDevice = new SamplerRequest[n];
            int[][] next = new int[n][];
            for (int i = 0; i < n; i++) {
                SamplerConfig c = SamplerConfig.greedy().withTemperature(i % 4 == 3 ? 0.7f : 1f).withSeed(r.nextLong());
                host.add(g.newSequence());
                device.add(g.newSequence());
                reference[i] = new Sampler(c, vocab);
                viaDevice[i] = new SamplerRequest(new Sampler(c, vocab));
                next[i] = r.ints(r.nextInt(1, 6), 0, vocab).toArray();
            }
            float[] lh = new float[n * vocab], ld = new float[n * vocab];
            RowKind[] logitsKinds = new RowKind[n], candidateKinds = new RowKind[n];
            Arrays.fill(logitsKinds, RowKind.LOGITS);
            Arrays.fill(candidateKinds, RowKind.CANDIDATES);
            int[] argmax = new int[n];
            CandidateRequest[] none = new CandidateRequest[n];
            Candidates cd = new Candidates(n), unused = new Candidates(n);
            int decided = 0, tokens = 0;
            for (int step = 0; step < 10; step++) {
                List<BatchEntry> bh = new ArrayList<>(), bd = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    bh.add(BatchEntry.of(host.get(i), next[i]));
                    bd.add(BatchEntry.of(device.get(i), next[i]));
                    viaDevice[i].next();
                }
                g.step(bh, lh, logitsKinds, argmax, none, unused);
                Arrays.fill(ld, Float.NaN);
                g.step(bd, ld, candidateKinds, argmax, viaDevice, cd);
                for (int i = 0; i < n; i++) {
                    boolean decides = viaDevice[i].decides(cd, i);
                    decided += decides ? 1 : 0;
                    tokens++;
                    int expected = reference[i].sample(lh, i * vocab);
                    int got = viaDevice[i].sample(cd, i, ld, vocab);
                    assertThat(got).as("step %d entry %d (%s), decided %s", step, i, reference[i].config(), decides)
                            .isEqualTo(expected);
                    reference[i].accept(expected);
                    next[i] = new int[] {expected};
                }
            }
            // single-token path: a lone sequence per step, each of the first three samplers in turn
            RowKind[] oneLogits = {RowKind.LOGITS}, oneCandidates = {RowKind.CANDIDATES};
            Candidates one = new Candidates(1);
            float[] fh = new float[vocab], fd = new float[vocab];
            for (int step = 0; step < 12; step++) {
                int i = step % 3;
                g.step(List.of(BatchEntry.of(host.get(i), next[i])), fh, oneLogits, argmax, none, unused);
                Arrays.fill(fd, Float.NaN);
                g.step(List.of(BatchEntry.of(device.get(i), next[i])), fd, oneCandidates, argmax,
                        new CandidateRequest[] {viaDevice[i].next()}, one);
                boolean decides = viaDevice[i].decides(one, 0);
                decided += decides ? 1 : 0;
                tokens++;
                int expected = reference[i].sample(fh, 0);
                assertThat(viaDevice[i].sample(one, 0, fd, vocab)).as("lone step %d (%s)", step, reference[i].config())
                        .isEqualTo(expected);
                reference[i].accept(expected);
                next[i] = new int[] {expected};
            }
            assertThat(decided).as("tokens drawn on the device").isGreaterThanOrEqualTo(tokens - 3);
            host.forEach(Sequence::close);
            device.forEach(Sequence::close);
        }
    }

    private static void assertSame(Candidates host, Candidates device, int row, String what) {
        assertThat(device.flagged(row)).as(what).isEqualTo(host.flagged(row));
        assertThat(device.width(row)).as(what).isEqualTo(host.width(row));
        if (host.flagged(row)) {
            return;
        }
        for (int k = 0; k < host.width(row); k++) {
            assertThat(device.id(row, k)).as("%s candidate %d", what, k).isEqualTo(host.id(row, k));
            assertThat(Float.floatToIntBits(device.value(row, k))).as("%s value %d", what, k)
                    .isEqualTo(Float.floatToIntBits(host.value(row, k)));
        }
        double h = host.expSum(row);
        assertThat(Math.abs(device.expSum(row) - h)).as(what).isLessThanOrEqualTo(h * 1e-10);
        // the draw over the whole row, where asked: the same u and 1/T, decided alike, and the same token then
        assertThat(Double.doubleToLongBits(device.drawUniform(row))).as("%s: draw u", what)   // NaN: no draw
                .isEqualTo(Double.doubleToLongBits(host.drawUniform(row)));
        assertThat(Double.doubleToLongBits(device.drawInverseTemperature(row))).as("%s: draw 1/T", what)
                .isEqualTo(Double.doubleToLongBits(host.drawInverseTemperature(row)));
        assertThat(device.drawDecided(row)).as("%s: draw decided", what).isEqualTo(host.drawDecided(row));
        if (host.drawDecided(row)) {
            assertThat(device.drawnId(row)).as("%s: drawn", what).isEqualTo(host.drawnId(row));
        }
    }
}
