package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.llm.server.GenerationListener.FinishReason;
import aether.llm.server.GenerationListener.GeneratedToken;
import aether.runtime.testing.SharedData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The serving engine on the real stories260K model, against a plain one-sequence greedy loop over the same contract. */
class ServingEngineTest {

    static final String[] PROMPTS = {"Once upon a time", "The cat", "Lily and Tom went to the park", "One day",
        "A big red ball", "The sun was", "Tim had a dog named", "She was happy"};

    static Path modelPath;
    static LoadedModel reference;

    @BeforeAll
    static void open() {
        modelPath = SharedData.require("models/stories260K.gguf");
        reference = LoadedModel.open(modelPath, EngineOptions.DEFAULTS.withContextSize(256));
    }

    @AfterAll
    static void close() {
        if (reference != null) {
            reference.close();
        }
    }

    /** Prompt then one token per step, each the argmax (ties to the lower id), stopping at end-of-generation. */
    static List<Integer> sequentialGreedy(int[] prompt, int maxTokens) {
        return sequentialGreedy(prompt, maxTokens, false);
    }

    static List<Integer> sequentialGreedy(int[] prompt, int maxTokens, boolean ignoreEos) {
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
                if (out.size() == maxTokens || !ignoreEos && reference.tokenizer().isEndOfGeneration(best)) {
                    return out;
                }
                m.step(List.of(BatchEntry.of(s, best)), logits);
            }
        }
    }

    static int[] encode(String text) {
        return reference.tokenizer().encode(text, true, false);
    }

    /** Collects token ids and the finish of one request. */
    static final class Recorder implements GenerationListener {
        final List<Integer> ids = new ArrayList<>();
        final StringBuilder text = new StringBuilder();
        final CompletableFuture<FinishReason> finished = new CompletableFuture<>();
        final CountDownLatch firstText = new CountDownLatch(1);
        volatile int completionTokens;

        @Override
        public synchronized void onText(String t, List<GeneratedToken> tokens) {
            text.append(t);
            tokens.forEach(g -> ids.add(g.id()));
            firstText.countDown();
        }

        @Override
        public void onFinish(FinishReason reason, int promptTokens, int completion) {
            completionTokens = completion;
            finished.complete(reason);
        }

        @Override
        public void onError(RuntimeException error) {
            finished.completeExceptionally(error);
        }
    }

    static GenerationRequest greedy(int[] prompt, int maxTokens) {
        return new GenerationRequest(prompt, maxTokens, List.of(), SamplingParams.GREEDY, 0, false);
    }

    static ServingEngine engine(LoadedModel model, int maxConcurrency, int queue, int prefillChunk) {
        return new ServingEngine(model.model(), model.tokenizer(),
                TokenSamplers.standard(model.model().contextSize()),
                new ServingEngine.Settings(maxConcurrency, queue, prefillChunk), new ServerMetrics());
    }

    @Test
    @Timeout(120)
    void shouldGiveEachOfManyInterleavedRequestsItsSequentialGreedyOutput() throws Exception {
        try (var model = LoadedModel.open(modelPath, EngineOptions.DEFAULTS.withContextSize(256).withMaxSequences(6));
                var engine = engine(model, 6, 64, 3)) {   // prefill chunks of 3 tokens: prompts join mid-decode
            var recorders = new ArrayList<Recorder>();
            for (int i = 0; i < 24; i++) {
                var r = new Recorder();
                engine.submit(greedy(encode(PROMPTS[i % PROMPTS.length]), 20 + i), r);
                recorders.add(r);
            }
            for (int i = 0; i < recorders.size(); i++) {
                Recorder r = recorders.get(i);
                FinishReason reason = r.finished.get(60, TimeUnit.SECONDS);
                List<Integer> expected = sequentialGreedy(encode(PROMPTS[i % PROMPTS.length]), 20 + i);
                assertThat(r.ids).as("request %d", i).isEqualTo(expected);
                assertThat(r.completionTokens).isEqualTo(expected.size());
                assertThat(r.text.toString()).isEqualTo(reference.tokenizer().decode(
                        expected.stream().mapToInt(Integer::intValue).toArray()));
                assertThat(reason).isEqualTo(expected.size() == 20 + i ? FinishReason.LENGTH : FinishReason.STOP);
            }
            assertThat(engine.kvStats().usedBlocks()).isZero();
        }
    }

    @Test
    @Timeout(120)
    void shouldRecomputeAnEvictedSequenceWhenThePoolRunsOut() throws Exception {
        // a pool of 4 blocks (64 positions) for two sequences that each grow to ~60: one is evicted and recomputed
        var metrics = new ServerMetrics();
        try (var model = LoadedModel.open(modelPath, EngineOptions.DEFAULTS.withContextSize(64).withMaxSequences(1));
                var engine = new ServingEngine(model.model(), model.tokenizer(), TokenSamplers.standard(64),
                        new ServingEngine.Settings(2, 4, 8), metrics)) {
            var a = new Recorder();
            var b = new Recorder();
            int[] pa = encode(PROMPTS[0]);
            int[] pb = encode(PROMPTS[2]);
            engine.submit(new GenerationRequest(pa, 50, List.of(), SamplingParams.GREEDY, 0, true), a);
            engine.submit(new GenerationRequest(pb, 50, List.of(), SamplingParams.GREEDY, 0, true), b);
            a.finished.get(60, TimeUnit.SECONDS);
            b.finished.get(60, TimeUnit.SECONDS);
            assertThat(a.ids).hasSize(50);
            assertThat(b.ids).hasSize(50);
            assertThat(a.ids).isEqualTo(sequentialGreedy(pa, 50, true));
            assertThat(b.ids).isEqualTo(sequentialGreedy(pb, 50, true));
            assertThat(new String(metrics.scrape(), java.nio.charset.StandardCharsets.UTF_8))
                    .containsPattern("aether_preemptions_total [1-9]");
            assertThat(engine.kvStats().usedBlocks()).isZero();
        }
    }

    @Test
    @Timeout(60)
    void shouldFreeTheKvBlocksOfACancelledRequestBeforeTheNextSteps() throws Exception {
        try (var model = LoadedModel.open(modelPath, EngineOptions.DEFAULTS.withContextSize(512).withMaxSequences(2));
                var engine = engine(model, 2, 0, 64)) {
            var r = new Recorder();
            ServingEngine.Handle h = engine.submit(
                    new GenerationRequest(encode(PROMPTS[1]), 500, List.of(), SamplingParams.GREEDY, -1, true), r);
            assertThat(r.firstText.await(30, TimeUnit.SECONDS)).isTrue();
            long busy = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (engine.kvStats().usedBlocks() == 0 && System.nanoTime() < busy) {
                Thread.sleep(1);   // the gauges are published after each step
            }
            assertThat(engine.kvStats().usedBlocks()).isPositive();
            h.cancel();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while ((engine.kvStats().usedBlocks() > 0 || engine.active() > 0) && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(engine.kvStats().usedBlocks()).isZero();
            assertThat(engine.active()).isZero();
            assertThat(r.finished).isNotDone();   // a cancelled request hears nothing more
            // the slot is free again: a new request runs to completion
            var next = new Recorder();
            engine.submit(greedy(encode(PROMPTS[3]), 8), next);
            assertThat(next.finished.get(30, TimeUnit.SECONDS)).isNotNull();
        }
    }

    @Test
    @Timeout(60)
    void shouldRefuseRequestsBeyondConcurrencyPlusQueueWith429() throws Exception {
        try (var model = LoadedModel.open(modelPath, EngineOptions.DEFAULTS.withContextSize(512).withMaxSequences(1));
                var engine = engine(model, 1, 1, 64)) {
            var running = new Recorder();
            var waiting = new Recorder();
            var longRun = new GenerationRequest(encode(PROMPTS[0]), 400, List.of(), SamplingParams.GREEDY, -1, true);
            ServingEngine.Handle h1 = engine.submit(longRun, running);
            ServingEngine.Handle h2 = engine.submit(longRun, waiting);
            assertThatThrownBy(() -> engine.submit(longRun, new Recorder()))
                    .isInstanceOfSatisfying(ApiException.class, e -> {
                        assertThat(e.status()).isEqualTo(429);
                        assertThat(e.retryAfterSeconds()).isPositive();
                    });
            h1.cancel();
            h2.cancel();
            // both slots come back: the next request is admitted and completes
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            Recorder after = null;
            while (after == null && System.nanoTime() < deadline) {
                try {
                    var r = new Recorder();
                    engine.submit(greedy(encode(PROMPTS[4]), 4), r);
                    after = r;
                } catch (ApiException e) {
                    Thread.sleep(10);
                }
            }
            assertThat(after).isNotNull();
            assertThat(after.finished.get(30, TimeUnit.SECONDS)).isNotNull();
        }
    }

    @Test
    @Timeout(60)
    void shouldCutTheTextAtAStopStringAndNeverShowPartOfIt() throws Exception {
        int[] prompt = encode(PROMPTS[0]);
        List<Integer> free = sequentialGreedy(prompt, 40);
        String full = reference.tokenizer().decode(free.stream().mapToInt(Integer::intValue).toArray());
        String stop = full.substring(12, 16);
        try (var model = LoadedModel.open(modelPath, EngineOptions.DEFAULTS.withContextSize(256));
                var engine = engine(model, 1, 1, 64)) {
            var r = new Recorder();
            engine.submit(new GenerationRequest(prompt, 40, List.of("zzzz", stop), SamplingParams.GREEDY, -1, false),
                    r);
            assertThat(r.finished.get(30, TimeUnit.SECONDS)).isEqualTo(FinishReason.STOP);
            assertThat(r.text.toString()).isEqualTo(full.substring(0, full.indexOf(stop)));
        }
    }

    @Test
    @Timeout(60)
    void shouldReuseTheKvOfAKeptPrefixAndStillGiveTheSequentialOutput() throws Exception {
        var metrics = new ServerMetrics();
        try (var model = LoadedModel.open(modelPath, EngineOptions.DEFAULTS.withContextSize(256).withMaxSequences(2));
                var engine = new ServingEngine(model.model(), model.tokenizer(), TokenSamplers.standard(256),
                        new ServingEngine.Settings(2, 8, 64, 2), metrics)) {
            int[] first = encode(PROMPTS[2]);
            var a = new Recorder();
            engine.submit(greedy(first, 20), a);
            a.finished.get(30, TimeUnit.SECONDS);
            // the next turn: the first prompt, its answer and more text
            int[] more = reference.tokenizer().encode(" Then they", false, false);
            int[] second = java.util.stream.IntStream.concat(java.util.stream.IntStream.concat(
                    java.util.Arrays.stream(first), a.ids.stream().mapToInt(Integer::intValue)),
                    java.util.Arrays.stream(more)).toArray();
            var b = new Recorder();
            engine.submit(greedy(second, 15), b);
            b.finished.get(30, TimeUnit.SECONDS);
            assertThat(b.ids).isEqualTo(sequentialGreedy(second, 15));
            var again = new Recorder();
            engine.submit(greedy(first, 20), again);
            again.finished.get(30, TimeUnit.SECONDS);
            assertThat(again.ids).isEqualTo(a.ids);
            String scrape = new String(metrics.scrape(), java.nio.charset.StandardCharsets.UTF_8);
            assertThat(scrape).contains("aether_prefix_cache_hits_total 2.0", "aether_prefix_cache_misses_total 1.0");
            // b reused everything a's sequence held: the first prompt and all but the last generated token
            long reused = first.length + a.ids.size() - 1 + first.length - 1;
            assertThat(scrape).contains("aether_prefix_cache_reused_tokens_total " + reused + ".0");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (engine.kvStats().usedBlocks() != engine.cachedBlocks() && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(engine.kvStats().usedBlocks()).as("only kept sequences hold blocks")
                    .isEqualTo(engine.cachedBlocks()).isPositive();
        }
    }
}
