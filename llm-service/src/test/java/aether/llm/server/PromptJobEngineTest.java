package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Pooling;
import aether.llm.engine.Sequence;
import aether.llm.server.GenerationListener.GeneratedToken;
import aether.runtime.testing.SharedData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Embedding and prompt-scoring jobs in the serving engine on stories260K: their results against a direct computation
 * over the model contract, batching, pooling, and that they neither change running generations nor keep KV memory.
 */
class PromptJobEngineTest {

    static final String[] TEXTS = {"Once upon a time", "The cat sat on the mat and looked at the big red ball",
        "Lily", "Tim had a dog named Max. They played in the park every day until the sun went down."};

    /**
     * An f32 KV cache, so that results depend on the batch composition only through float rounding (~1e-6): with
     * f16, a K/V value a float ulp away from an f16 rounding boundary can round the other way when the same row is
     * computed in another batch shape, which moves an embedding by up to ~1e-4.
     */
    static final EngineOptions F32_KV = EngineOptions.DEFAULTS.withKvType("f32");

    static Path modelPath;
    static LoadedModel reference;
    static int embd;

    @BeforeAll
    static void open() {
        modelPath = SharedData.require("models/stories260K.gguf");
        reference = LoadedModel.open(modelPath, F32_KV.withContextSize(256));
        embd = reference.model().config().embeddingLength();
    }

    @AfterAll
    static void close() {
        if (reference != null) {
            reference.close();
        }
    }

    static int[] encode(String text) {
        return reference.tokenizer().encode(text, true, true);
    }

    /** The final hidden rows of a whole input in one step of the reference model. */
    static float[] hidden(int[] ids) {
        InferenceModel m = reference.model();
        float[] out = new float[ids.length * embd];
        try (Sequence s = m.newSequence()) {
            m.step(List.of(BatchEntry.of(s, ids)), InferenceModel.Output.ALL_HIDDEN, out);
        }
        return out;
    }

    /** Pooled and L2-normalised, computed here in double without the engine's pooler. */
    static double[] expected(int[] ids, Pooling pooling) {
        float[] h = hidden(ids);
        int n = ids.length;
        double[] v = new double[embd];
        for (int t = 0; t < n; t++) {
            boolean take = pooling == Pooling.MEAN || pooling == Pooling.CLS && t == 0
                    || pooling == Pooling.LAST && t == n - 1;
            for (int i = 0; take && i < embd; i++) {
                v[i] += h[t * embd + i] / (pooling == Pooling.MEAN ? (double) n : 1);
            }
        }
        double norm = 0;
        for (double x : v) {
            norm += x * x;
        }
        for (int i = 0; i < embd; i++) {
            v[i] /= Math.sqrt(norm);
        }
        return v;
    }

    static void assertClose(float[] got, double[] want, double tol) {
        assertThat(got).hasSize(want.length);
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            worst = Math.max(worst, Math.abs(got[i] - want[i]));
        }
        assertThat(worst).as("max |embedding difference|").isLessThanOrEqualTo(tol);
    }

    static float[][] embed(ServingEngine engine, Pooling pooling, String... texts) throws Exception {
        int[][] inputs = new int[texts.length][];
        for (int i = 0; i < texts.length; i++) {
            inputs[i] = encode(texts[i]);
        }
        var job = engine.submit(new EmbeddingJob(inputs, pooling, embd, embd), "input");
        return job.result().get(60, TimeUnit.SECONDS);
    }

    /** The gauges are published after each engine step: waits until they show no sequence and no KV block held. */
    static void awaitIdle(ServingEngine engine) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while ((engine.kvStats().usedBlocks() > 0 || engine.active() > 0) && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(engine.kvStats().usedBlocks()).isZero();
        assertThat(engine.active()).isZero();
    }

    /** Prompt then greedy tokens one step at a time on the reference model (no end-of-generation stop needed). */
    static List<Integer> sequentialGreedy(int[] prompt, int n) {
        InferenceModel m = reference.model();
        int vocab = m.config().vocabSize();
        float[] logits = new float[vocab];
        var out = new ArrayList<Integer>();
        try (Sequence s = m.newSequence()) {
            m.step(List.of(BatchEntry.of(s, prompt)), logits);
            while (true) {
                int best = 0;
                for (int t = 1; t < vocab; t++) {
                    if (logits[t] > logits[best]) {
                        best = t;
                    }
                }
                out.add(best);
                if (out.size() == n || reference.tokenizer().isEndOfGeneration(best)) {
                    return out;
                }
                m.step(List.of(BatchEntry.of(s, best)), logits);
            }
        }
    }

    static ServingEngine engine(LoadedModel model, int maxConcurrency, int queue, int prefillChunk) {
        return ServingEngineTest.engine(model, maxConcurrency, queue, prefillChunk);
    }

    @Test
    @Timeout(120)
    void embeddingsShouldBeThePooledNormalisedHiddenStatesForEveryPooling() throws Exception {
        try (var model = LoadedModel.open(modelPath, F32_KV.withContextSize(256).withMaxSequences(2));
                var engine = engine(model, 2, 8, 5)) {   // chunks of 5 tokens: inputs span several steps
            for (Pooling p : List.of(Pooling.MEAN, Pooling.CLS, Pooling.LAST)) {
                float[][] got = embed(engine, p, TEXTS);
                for (int i = 0; i < TEXTS.length; i++) {
                    // chunking changes how rows are grouped in the matmuls, not what they compute (float rounding)
                    assertClose(got[i], expected(encode(TEXTS[i]), p), 1e-5);
                    double norm = 0;
                    for (float x : got[i]) {
                        norm += x * x;
                    }
                    assertThat(Math.sqrt(norm)).isCloseTo(1, org.assertj.core.api.Assertions.within(1e-6));
                }
            }
            // mean, first and last rows really differ on a multi-token input
            float[] mean = embed(engine, Pooling.MEAN, TEXTS[1])[0];
            float[] last = embed(engine, Pooling.LAST, TEXTS[1])[0];
            assertThat(mean).isNotEqualTo(last);
            awaitIdle(engine);
        }
    }

    @Test
    @Timeout(120)
    void aBatchOfInputsShouldEqualEachInputAlone() throws Exception {
        try (var model = LoadedModel.open(modelPath, F32_KV.withContextSize(256).withMaxSequences(2));
                var engine = engine(model, 2, 8, 64)) {
            float[][] batch = embed(engine, Pooling.MEAN, TEXTS);
            for (int i = 0; i < TEXTS.length; i++) {
                float[] alone = embed(engine, Pooling.MEAN, TEXTS[i])[0];
                double worst = 0;
                for (int k = 0; k < embd; k++) {
                    worst = Math.max(worst, Math.abs(alone[k] - batch[i][k]));
                }
                assertThat(worst).as("input %d", i).isLessThanOrEqualTo(1e-5);
            }
            // truncation: the first k components of the pooled vector, renormalised
            int[][] one = {encode(TEXTS[3])};
            float[] cut = engine.submit(new EmbeddingJob(one, Pooling.MEAN, embd, 7), "input").result()
                    .get(60, TimeUnit.SECONDS)[0];
            double[] full = expected(one[0], Pooling.MEAN);
            double n = 0;
            for (int k = 0; k < 7; k++) {
                n += full[k] * full[k];
            }
            double[] want = new double[7];
            for (int k = 0; k < 7; k++) {
                want[k] = full[k] / Math.sqrt(n);
            }
            assertClose(cut, want, 1e-5);
        }
    }

    @Test
    @Timeout(120)
    void embeddingsShouldNotChangeRunningGenerationsAndShouldFreeTheirBlocks() throws Exception {
        try (var model = LoadedModel.open(modelPath, F32_KV.withContextSize(256).withMaxSequences(4));
                var engine = engine(model, 4, 16, 3)) {
            var recorders = new ArrayList<ServingEngineTest.Recorder>();
            for (int i = 0; i < 3; i++) {
                var r = new ServingEngineTest.Recorder();
                engine.submit(ServingEngineTest.greedy(encode(ServingEngineTest.PROMPTS[i]), 60), r);
                recorders.add(r);
            }
            assertThat(recorders.getFirst().firstText.await(30, TimeUnit.SECONDS)).isTrue();
            var jobs = new ArrayList<PromptJob<float[][]>>();
            for (int k = 0; k < 4; k++) {   // while the three decode, embeddings come and go
                jobs.add(engine.submit(new EmbeddingJob(new int[][] {encode(TEXTS[k]), encode(TEXTS[(k + 1) % 4])},
                        Pooling.MEAN, embd, embd), "input"));
            }
            for (int k = 0; k < jobs.size(); k++) {
                float[][] got = jobs.get(k).result().get(60, TimeUnit.SECONDS);
                assertClose(got[0], expected(encode(TEXTS[k]), Pooling.MEAN), 1e-5);
                assertClose(got[1], expected(encode(TEXTS[(k + 1) % 4]), Pooling.MEAN), 1e-5);
            }
            for (int i = 0; i < recorders.size(); i++) {
                recorders.get(i).finished.get(60, TimeUnit.SECONDS);
                assertThat(recorders.get(i).ids).as("generation %d", i).isEqualTo(
                        sequentialGreedy(encode(ServingEngineTest.PROMPTS[i]), 60));
            }
            awaitIdle(engine);
        }
    }

    @Test
    @Timeout(60)
    void shouldAdmitPromptJobsLikeGenerationsAndRefuseBadInputsNamingTheField() throws Exception {
        try (var model = LoadedModel.open(modelPath, F32_KV.withContextSize(64).withMaxSequences(1));
                var engine = engine(model, 1, 0, 64)) {
            var r = new ServingEngineTest.Recorder();
            ServingEngine.Handle h = engine.submit(new GenerationRequest(encode("The cat"), 60, List.of(),
                    SamplingParams.GREEDY, -1, true), r);
            assertThat(r.firstText.await(30, TimeUnit.SECONDS)).isTrue();
            assertThatThrownBy(() -> engine.submit(new EmbeddingJob(new int[][] {{1, 2}}, Pooling.MEAN, embd, embd),
                    "input")).isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.status()).isEqualTo(429));
            h.cancel();
            int vocab = model.model().config().vocabSize();
            assertThatThrownBy(() -> engine.submit(new EmbeddingJob(new int[][] {{1}, {2, vocab}}, Pooling.MEAN, embd,
                    embd), "input")).isInstanceOfSatisfying(ApiException.class, e -> {
                        assertThat(e.status()).isEqualTo(400);
                        assertThat(e.param()).isEqualTo("input[1]");
                        assertThat(e.getMessage()).contains("token id " + vocab).contains("0.." + (vocab - 1));
                    });
            assertThatThrownBy(() -> engine.submit(new EmbeddingJob(new int[][] {new int[65]}, Pooling.MEAN, embd,
                    embd), "input")).isInstanceOfSatisfying(ApiException.class, e -> {
                        assertThat(e.param()).isEqualTo("input");
                        assertThat(e.getMessage()).contains("65 tokens").contains("64");
                    });
            // the slot frees once the cancelled generation is reaped
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            PromptJob<float[][]> job = null;
            while (job == null) {
                try {
                    job = engine.submit(new EmbeddingJob(new int[][] {{1, 5, 9}}, Pooling.MEAN, embd, embd), "input");
                } catch (ApiException busy) {
                    assertThat(System.nanoTime()).isLessThan(deadline);
                    Thread.sleep(5);
                }
            }
            assertThat(job.result().get(30, TimeUnit.SECONDS)[0]).hasSize(embd);
        }
    }

    @Test
    @Timeout(60)
    void scoringShouldGiveEachPromptTokensLogprobGivenThoseBeforeIt() throws Exception {
        try (var model = LoadedModel.open(modelPath, F32_KV.withContextSize(256).withMaxSequences(2));
                var engine = engine(model, 2, 8, 4)) {
            int[] p = encode(TEXTS[1]);
            var job = engine.submit(new ScoringJob(new int[][] {p}, 3), "prompt");
            List<GeneratedToken> got = job.result().get(30, TimeUnit.SECONDS).getFirst();
            assertThat(got).hasSize(p.length);
            assertThat(got.getFirst().id()).isEqualTo(p[0]);
            assertThat(got.getFirst().logprob()).isNaN();
            int vocab = reference.model().config().vocabSize();
            float[] logits = new float[vocab];
            for (int t = 1; t < p.length; t++) {
                try (Sequence s = reference.model().newSequence()) {
                    reference.model().step(List.of(new BatchEntry(s, p, 0, t)), logits);
                }
                GeneratedToken want = Logprobs.of(logits, p[t], 3);
                assertThat(got.get(t).id()).isEqualTo(p[t]);
                assertThat(got.get(t).logprob()).isCloseTo(want.logprob(),
                        org.assertj.core.api.Assertions.within(1e-4));
                assertThat(got.get(t).topIds()).containsExactly(want.topIds());
            }
            awaitIdle(engine);
        }
    }
}
