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
 * decide come with their logits. Then a lone sequence through the single-token path the same way.
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

        int sample(Candidates c, int row, float[] logits, int vocab) {
            int t = decides(c, row) ? sampler.sampleCandidates(c, row) : sampler.sample(logits, row * vocab);
            sampler.accept(t);
            return t;
        }
    }

    static SamplerConfig config(int i, int vocab) {
        SamplerConfig base = SamplerConfig.greedy().withTemperature(0.9f).withSeed(1000 + i);
        return switch (i % 6) {
            case 0 -> base.withTopK(40);
            case 1 -> base.withTopP(0.9f);                                   // flat synthetic rows: mostly the fallback
            case 2 -> base.withTopK(20).withPenalties(1.3f, 0.4f, 0.2f, 64);
            case 3 -> base.withTopK(64).withLogitBias(Map.of(i, 4f, (i * 7) % vocab, Float.NEGATIVE_INFINITY));
            case 4 -> base.withMinP(0.2f).withTopK(50).withTemperature(1.5f);
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
    }
}
