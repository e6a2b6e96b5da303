package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.llm.model.ModelConfig;
import aether.llm.sampling.Argmax;
import aether.llm.sampling.CandidateRequest;
import aether.llm.sampling.Candidates;
import aether.llm.server.GenerationListener.FinishReason;
import aether.llm.server.GenerationListener.GeneratedToken;
import aether.runtime.testing.SharedData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The serving engine's candidate rows ({@link InferenceModel.RowKind#CANDIDATES}): sampled requests whose samplers can
 * pick from candidates get them, and their tokens and log-probabilities are exactly those of the same requests sampled
 * from the logits. The model is the CPU engine on stories260K behind {@link Recording}, which gives reproducible
 * logits and behaves as a device engine: a candidates row's logits are poisoned (NaN) unless its request said the
 * candidates do not decide it, so a read of one would fail the request. The reference runs the same requests with
 * samplers that never ask for candidates.
 */
class CandidateStepEngineTest {

    static Path modelPath;

    @BeforeAll
    static void open() {
        modelPath = SharedData.require("models/stories260K.gguf");
        ServingEngineTest.open();
    }

    @AfterAll
    static void close() {
        ServingEngineTest.close();
    }

    /** The CPU model handing out candidates as a device engine does, counting decided and fallback rows. */
    static final class Recording implements InferenceModel {
        final InferenceModel cpu;
        int decided;
        int fallback;
        /** Rows decided by the draw over the whole vocabulary (requests with a temperature and no filter). */
        int drawn;
        /** When above 0, every this-many-th row asking for a draw gets candidates without it (left to the row). */
        int dropDrawEvery;
        private int draws;
        private float[] full = new float[0];

        Recording(InferenceModel cpu) {
            this.cpu = cpu;
        }

        @Override
        public boolean samplesCandidates() {
            return true;   // as a device engine: the serving engine asks it for candidates
        }

        @Override
        public ModelConfig config() {
            return cpu.config();
        }

        @Override
        public int contextSize() {
            return cpu.contextSize();
        }

        @Override
        public Sequence newSequence() {
            return cpu.newSequence();
        }

        /**
         * The CPU model's step (sequences, KV), then each row's logits replaced by a function of the sequence's length
         * and last token: bitwise the same in every run (the CPU kernels' float sums may differ in their last bits
         * while the JIT warms up, which the exact comparison below must not see).
         */
        @Override
        public void step(List<BatchEntry> batch, Output output, float[] out) {
            cpu.step(batch, output, out);
            int vocab = config().vocabSize();
            for (int i = 0; i < batch.size(); i++) {
                BatchEntry e = batch.get(i);
                var r = new java.util.SplittableRandom(e.sequence().length() * 1_000_003L + e.tokens()[e.to() - 1]);
                double scale = 0.5 + r.nextDouble() * 3;
                for (int t = 0; t < vocab; t++) {
                    out[i * vocab + t] = (float) (r.nextGaussian() * scale);
                }
            }
        }

        @Override
        public void step(List<BatchEntry> batch, float[] logits, RowKind[] kinds, int[] argmaxOut,
                CandidateRequest[] requests, Candidates candidates) {
            InferenceModel.checkRowKinds(batch, kinds, argmaxOut, requests, candidates);
            int vocab = config().vocabSize();
            if (full.length < logits.length) {
                full = new float[logits.length];
            }
            step(batch, Output.LAST_LOGITS, full);
            for (int i = 0; i < batch.size(); i++) {
                boolean copy = switch (kinds[i]) {
                    case LOGITS -> true;
                    case ARGMAX -> {
                        argmaxOut[i] = Argmax.first(full, i * vocab, vocab);
                        yield false;
                    }
                    case CANDIDATES -> {
                        CandidateRequest r = requests[i];
                        if (!Double.isNaN(r.drawUniform()) && dropDrawEvery > 0 && ++draws % dropDrawEvery == 0) {
                            candidates.computeOnHost(full, i * vocab, vocab, r.adjustments(), i, r.needsExpSum());
                        } else {
                            candidates.computeOnHost(full, i * vocab, vocab, r, i);
                        }
                        boolean decides = requests[i].decides(candidates, i);
                        decided += decides ? 1 : 0;
                        fallback += decides ? 0 : 1;
                        drawn += decides && !Double.isNaN(requests[i].drawUniform()) ? 1 : 0;
                        yield !decides;
                    }
                };
                if (copy) {
                    System.arraycopy(full, i * vocab, logits, i * vocab, vocab);
                } else {
                    Arrays.fill(logits, i * vocab, (i + 1) * vocab, Float.NaN);   // a read would fail the sampler
                }
            }
        }

        @Override
        public KvStats kvStats() {
            return cpu.kvStats();
        }

        @Override
        public void close() {}
    }

    /** A listener keeping every generated token with its log-probabilities. */
    static final class Tokens implements GenerationListener {
        final List<GeneratedToken> tokens = new ArrayList<>();
        final CompletableFuture<FinishReason> finished = new CompletableFuture<>();

        @Override
        public synchronized void onText(String t, List<GeneratedToken> generated) {
            tokens.addAll(generated);
        }

        @Override
        public void onFinish(FinishReason reason, int promptTokens, int completion) {
            finished.complete(reason);
        }

        @Override
        public void onError(RuntimeException error) {
            finished.completeExceptionally(error);
        }
    }

    /** Samplers that never ask for candidates: the reference path (the logits row every token). */
    static TokenSampler.Factory logitsOnly(TokenSampler.Factory inner) {
        return (params, vocab, budget) -> {
            TokenSampler s = inner.create(params, vocab, budget);
            return new TokenSampler() {
                @Override
                public int sample(float[] logits, int offset, int v) {
                    return s.sample(logits, offset, v);
                }

                @Override
                public boolean argmaxOnly() {
                    return s.argmaxOnly();
                }

                @Override
                public int acceptArgmax(int token) {
                    return s.acceptArgmax(token);
                }
            };
        };
    }

    static List<GenerationRequest> requests() {
        int[] prompt = ServingEngineTest.encode("Once upon a time, a little girl");
        int[] other = ServingEngineTest.encode("Tom had a red ball");
        var list = new ArrayList<GenerationRequest>();
        list.add(new GenerationRequest(prompt, 24, List.of(), new SamplingParams(0.9, 1, 40, 0, 0, 0, 11, Map.of(),
                false), -1, true));
        list.add(new GenerationRequest(other, 24, List.of(), new SamplingParams(1.2, 0.9, 0, 0, 0, 0, 12, Map.of(),
                false), 3, true));                                   // top-p alone, with log-probabilities
        list.add(new GenerationRequest(prompt, 24, List.of(), new SamplingParams(0.7, 1, 0, 0.1, 0.6, 0.4, 13,
                Map.of(5, 2.0, 9, -100.0), false), -1, true));      // min-p alone, penalties and bias
        list.add(new GenerationRequest(other, 24, List.of(), new SamplingParams(0, 1, 0, 0, 0.5, 0, 14, Map.of(),
                false), -1, true));                                  // greedy with a penalty
        list.add(new GenerationRequest(prompt, 24, List.of(), new SamplingParams(0, 1, 0, 0, 0, 0, 15, Map.of(),
                false), 5, true));                                   // greedy with log-probabilities
        list.add(new GenerationRequest(other, 24, List.of(), new SamplingParams(0.8, 1, 0, 0, 0, 0, 16, Map.of(),
                false), -1, true));                                  // the whole vocabulary: the candidates' draw
        list.add(new GenerationRequest(prompt, 24, List.of(), new SamplingParams(1, 1, 0, 0, 0, 0, 17, Map.of(),
                false), 2, true));                                   // the OpenAI default, with log-probabilities
        return list;
    }

    /**
     * Each request alone through a fresh engine: the CPU engine's logits of a row depend slightly on which rows share
     * its step, so the comparison runs every step with the same batch (prompt chunks of 4, then one decode entry).
     */
    static List<Tokens> run(InferenceModel model, LoadedModel loaded, TokenSampler.Factory samplers) throws Exception {
        var out = new ArrayList<Tokens>();
        for (GenerationRequest r : requests()) {
            try (var engine = new ServingEngine(model, loaded.tokenizer(), samplers, new ServingEngine.Settings(2, 64, 4),
                    new ServerMetrics())) {
                var t = new Tokens();
                engine.submit(r, t);
                t.finished.get(60, TimeUnit.SECONDS);
                out.add(t);
            }
        }
        return out;
    }

    /** All seven at once: the candidate rows of a batch, the tokens checked against each request's own reference. */
    @Test
    @Timeout(120)
    void concurrentSampledRequestsFinishWithTheirTokens() throws Exception {
        try (var loaded = LoadedModel.open(modelPath,
                EngineOptions.DEFAULTS.withContextSize(256).withMaxSequences(8))) {
            var viaCandidates = new Recording(loaded.model());
            var metrics = new ServerMetrics();
            try (var engine = new ServingEngine(viaCandidates, loaded.tokenizer(),
                    TokenSamplers.standard(256, loaded.tokenizer()), new ServingEngine.Settings(7, 64, 4), metrics)) {
                var out = new ArrayList<Tokens>();
                for (GenerationRequest r : requests()) {
                    var t = new Tokens();
                    engine.submit(r, t);
                    out.add(t);
                }
                for (Tokens t : out) {
                    assertThat(t.finished.get(60, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
                    assertThat(t.tokens).hasSize(24);
                }
            }
            assertThat(viaCandidates.decided).isGreaterThanOrEqualTo(5 * 24);
            // the two vocabulary-wide requests (the OpenAI default among them): every token from the draw
            assertThat(viaCandidates.drawn).isEqualTo(2 * 24);
            // 7 x 24 tokens: no greedy argmax here (the greedy ones have a penalty or log-probabilities); the logits
            // only for the rows the candidates could not decide (flat top-p and min-p rows)
            String text = new String(metrics.scrape(), java.nio.charset.StandardCharsets.UTF_8);
            assertThat(text).contains("aether_token_choices_total{from=\"candidates\"} " + viaCandidates.decided + ".0")
                    .contains("aether_token_choices_total{from=\"argmax\"} 0.0")
                    .contains("aether_token_choices_total{from=\"logits\"} " + (7 * 24 - viaCandidates.decided) + ".0");
        }
    }

    @Test
    @Timeout(120)
    void sampledRequestsGetTheSameTokensAndLogprobsFromCandidates() throws Exception {
        try (var loaded = LoadedModel.open(modelPath,
                EngineOptions.DEFAULTS.withContextSize(256).withMaxSequences(8))) {
            TokenSampler.Factory standard = TokenSamplers.standard(256, loaded.tokenizer());
            var viaCandidates = new Recording(loaded.model());
            List<Tokens> a = run(viaCandidates, loaded, standard);
            List<Tokens> b = run(new Recording(loaded.model()), loaded,
                    logitsOnly(TokenSamplers.standard(256, loaded.tokenizer())));
            for (int i = 0; i < a.size(); i++) {
                List<GeneratedToken> x = a.get(i).tokens, y = b.get(i).tokens;
                assertThat(x).as("request %d", i).hasSize(24).hasSameSizeAs(y);
                for (int t = 0; t < x.size(); t++) {
                    assertThat(x.get(t).id()).as("request %d token %d", i, t).isEqualTo(y.get(t).id());
                    assertThat(Double.doubleToLongBits(x.get(t).logprob())).isEqualTo(Double.doubleToLongBits(y.get(t).logprob()));
                    assertThat(x.get(t).topIds()).containsExactly(y.get(t).topIds());
                    assertThat(x.get(t).topLogprobs()).containsExactly(y.get(t).topLogprobs());
                }
            }
            // all seven requests ask for candidates (a request whose candidates fell short pauses for
            // ServingEngine.CANDIDATE_PAUSE tokens); the two vocabulary-wide ones are decided by the draw
            assertThat(viaCandidates.decided + viaCandidates.fallback).isLessThanOrEqualTo(7 * 24);
            assertThat(viaCandidates.decided).as("rows decided by their candidates").isGreaterThanOrEqualTo(5 * 24);
        }
    }

    /**
     * A draw over the whole vocabulary left to the row (here: every third, computed without the draw; on a device, a
     * target near a cumulative boundary, which is chance) does not pause the request's candidates as a flat top-p row
     * does: every token still asks for them, and the tokens are those of the logits-only reference.
     */
    @Test
    @Timeout(120)
    void aDrawLeftToTheRowDoesNotPauseTheCandidates() throws Exception {
        try (var loaded = LoadedModel.open(modelPath,
                EngineOptions.DEFAULTS.withContextSize(256).withMaxSequences(8))) {
            GenerationRequest wide = requests().get(5);   // temperature 0.8, no filter
            assertThat(wide.sampling().topK()).isZero();
            var dropping = new Recording(loaded.model());
            dropping.dropDrawEvery = 3;
            var reference = new Tokens();
            var got = new Tokens();
            try (var engine = new ServingEngine(new Recording(loaded.model()), loaded.tokenizer(),
                    logitsOnly(TokenSamplers.standard(256, loaded.tokenizer())), new ServingEngine.Settings(2, 64, 4),
                    new ServerMetrics())) {
                engine.submit(wide, reference);
                reference.finished.get(60, TimeUnit.SECONDS);
            }
            try (var engine = new ServingEngine(dropping, loaded.tokenizer(),
                    TokenSamplers.standard(256, loaded.tokenizer()), new ServingEngine.Settings(2, 64, 4),
                    new ServerMetrics())) {
                engine.submit(wide, got);
                got.finished.get(60, TimeUnit.SECONDS);
            }
            assertThat(got.tokens).hasSize(24);
            assertThat(got.tokens.stream().map(GeneratedToken::id).toList())
                    .isEqualTo(reference.tokens.stream().map(GeneratedToken::id).toList());
            assertThat(dropping.decided + dropping.fallback).as("rows that asked for candidates").isEqualTo(24);
            assertThat(dropping.fallback).isEqualTo(8);
            assertThat(dropping.drawn).isEqualTo(16);
        }
    }

    /**
     * The CPU engine holds its logits in host memory, so candidates would only add a pass over each row: the serving
     * engine samples its rows directly (every sampled token from the logits, none from candidates).
     */
    @Test
    @Timeout(120)
    void theCpuEngineIsNotAskedForCandidates() throws Exception {
        try (var loaded = LoadedModel.open(modelPath,
                EngineOptions.DEFAULTS.withContextSize(256).withMaxSequences(8))) {
            assertThat(loaded.model().samplesCandidates()).isFalse();
            var metrics = new ServerMetrics();
            try (var engine = new ServingEngine(loaded.model(), loaded.tokenizer(),
                    TokenSamplers.standard(256, loaded.tokenizer()), new ServingEngine.Settings(6, 64, 4), metrics)) {
                var t = new Tokens();
                engine.submit(requests().get(0), t);   // top-k 40: candidates would decide every token
                assertThat(t.finished.get(60, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
                assertThat(t.tokens).hasSize(24);
            }
            String text = new String(metrics.scrape(), java.nio.charset.StandardCharsets.UTF_8);
            assertThat(text).contains("aether_token_choices_total{from=\"candidates\"} 0.0")
                    .contains("aether_token_choices_total{from=\"logits\"} 24.0");
        }
    }
}
