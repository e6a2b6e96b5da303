package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.llm.model.ModelConfig;
import aether.llm.sampling.Argmax;
import aether.llm.server.GenerationListener.FinishReason;
import aether.llm.server.ServingEngineTest.Recorder;
import aether.runtime.testing.SharedData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The serving engine's argmax-only rows ({@link InferenceModel#step(List, float[], boolean[], int[])}): a greedy
 * request without log-probabilities never reads its logits, every other kind still does, and the text is the same
 * either way. The model is the CPU engine on stories260K behind {@link Recording}, which hands the engine poisoned
 * (NaN) rows for every entry whose logits it said it did not want, so a read of one would fail the request.
 */
class ArgmaxStepEngineTest {

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

    /** The CPU model recording each step's logitsWanted flags (a plain step counts as all wanted). */
    static final class Recording implements InferenceModel {
        final InferenceModel cpu;
        final List<boolean[]> steps = new ArrayList<>();
        private float[] full = new float[0];

        Recording(InferenceModel cpu) {
            this.cpu = cpu;
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

        @Override
        public void step(List<BatchEntry> batch, Output output, float[] out) {
            boolean[] all = new boolean[batch.size()];
            Arrays.fill(all, true);
            synchronized (steps) {
                steps.add(all);
            }
            cpu.step(batch, output, out);
        }

        @Override
        public void step(List<BatchEntry> batch, float[] logits, boolean[] logitsWanted, int[] argmaxOut) {
            int vocab = config().vocabSize();
            synchronized (steps) {
                steps.add(Arrays.copyOf(logitsWanted, batch.size()));
            }
            if (full.length < logits.length) {
                full = new float[logits.length];
            }
            cpu.step(batch, full);
            for (int i = 0; i < batch.size(); i++) {
                if (logitsWanted[i]) {
                    System.arraycopy(full, i * vocab, logits, i * vocab, vocab);
                } else {
                    argmaxOut[i] = Argmax.first(full, i * vocab, vocab);
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

        /** Every flag of every step so far. */
        List<Boolean> flags() {
            synchronized (steps) {
                var out = new ArrayList<Boolean>();
                for (boolean[] s : steps) {
                    for (boolean b : s) {
                        out.add(b);
                    }
                }
                return out;
            }
        }
    }

    static ServingEngine engine(InferenceModel model, LoadedModel loaded, int maxConcurrency, int prefillChunk) {
        return new ServingEngine(model, loaded.tokenizer(),
                TokenSamplers.standard(model.contextSize(), loaded.tokenizer()),
                new ServingEngine.Settings(maxConcurrency, 64, prefillChunk), new ServerMetrics());
    }

    static SamplingParams params(double temperature, double presence, double frequency, Map<Integer, Double> bias,
            boolean json) {
        return new SamplingParams(temperature, 1, 0, 0, presence, frequency, 7, bias, json);
    }

    /** Runs one request alone through a fresh engine over a recording model; returns the recorder and the model. */
    static Recorder runAlone(LoadedModel loaded, Recording model, GenerationRequest request) throws Exception {
        try (var engine = engine(model, loaded, 2, 64)) {
            var r = new Recorder();
            engine.submit(request, r);
            r.finished.get(60, TimeUnit.SECONDS);
            return r;
        }
    }

    @Test
    @Timeout(120)
    void manyGreedyRequestsTakeTheArgmaxWithoutReadingLogitsAndMatchSequentialGreedy() throws Exception {
        String[] prompts = ServingEngineTest.PROMPTS;
        try (var loaded = LoadedModel.open(modelPath,
                EngineOptions.DEFAULTS.withContextSize(256).withMaxSequences(6))) {
            var model = new Recording(loaded.model());
            try (var engine = engine(model, loaded, 6, 3)) {   // chunks of 3: prompts join mid-decode
                var recorders = new ArrayList<Recorder>();
                for (int i = 0; i < 16; i++) {
                    var r = new Recorder();
                    engine.submit(new GenerationRequest(ServingEngineTest.encode(prompts[i % prompts.length]), 12 + i,
                            List.of(), SamplingParams.GREEDY, -1, false), r);
                    recorders.add(r);
                }
                for (int i = 0; i < recorders.size(); i++) {
                    Recorder r = recorders.get(i);
                    FinishReason reason = r.finished.get(60, TimeUnit.SECONDS);
                    List<Integer> expected = ServingEngineTest.sequentialGreedy(
                            ServingEngineTest.encode(prompts[i % prompts.length]), 12 + i);
                    assertThat(r.ids).as("request %d (%s)", i, reason).isEqualTo(expected);
                }
            }
            assertThat(model.flags()).as("no row of a greedy request wants its logits").isNotEmpty()
                    .containsOnly(false);
        }
    }

    @Test
    @Timeout(120)
    void theGreedyTextIsTheSameWithAndWithoutTheArgmaxPath() throws Exception {
        try (var loaded = LoadedModel.open(modelPath, EngineOptions.DEFAULTS.withContextSize(256))) {
            int[] prompt = ServingEngineTest.encode("Lily and Tom went to the park");
            var viaArgmax = new Recording(loaded.model());
            Recorder a = runAlone(loaded, viaArgmax,
                    new GenerationRequest(prompt, 40, List.of(), SamplingParams.GREEDY, -1, true));
            var viaLogits = new Recording(loaded.model());
            // top_logprobs 0 (the chosen token's log-probability) needs the logits: the sampler picks from them
            Recorder b = runAlone(loaded, viaLogits,
                    new GenerationRequest(prompt, 40, List.of(), SamplingParams.GREEDY, 0, true));
            assertThat(viaArgmax.flags()).containsOnly(false);
            assertThat(viaLogits.flags()).containsOnly(true);
            assertThat(a.ids).hasSize(40).isEqualTo(b.ids);
            assertThat(a.text.toString()).isNotBlank().isEqualTo(b.text.toString());
            assertThat(a.completionTokens).isEqualTo(b.completionTokens).isEqualTo(40);
        }
    }

    @Test
    @Timeout(120)
    void requestsThatSampleFromTheLogitsStillGetThem() throws Exception {
        int biased = 5;   // any token, biased a little
        List<GenerationRequest> needLogits = new ArrayList<>();
        int[] prompt = ServingEngineTest.encode("Once upon a time");
        needLogits.add(new GenerationRequest(prompt, 6, List.of(), SamplingParams.GREEDY, 0, false));   // logprobs
        needLogits.add(new GenerationRequest(prompt, 6, List.of(), SamplingParams.GREEDY, 3, false));
        needLogits.add(new GenerationRequest(prompt, 6, List.of(), params(0, 0.5, 0, Map.of(), false), -1, false));
        needLogits.add(new GenerationRequest(prompt, 6, List.of(), params(0, 0, 0.5, Map.of(), false), -1, false));
        needLogits.add(new GenerationRequest(prompt, 6, List.of(), params(0, 0, 0, Map.of(biased, 1.0), false), -1,
                false));
        needLogits.add(new GenerationRequest(prompt, 6, List.of(), params(0.8, 0, 0, Map.of(), false), -1, false));
        needLogits.add(new GenerationRequest(prompt, 6, List.of(), params(0, 0, 0, Map.of(), true), -1, false));
        try (var loaded = LoadedModel.open(modelPath, EngineOptions.DEFAULTS.withContextSize(256))) {
            for (GenerationRequest request : needLogits) {
                var model = new Recording(loaded.model());
                Recorder r = runAlone(loaded, model, request);
                assertThat(r.finished).as("%s", request.sampling()).isCompleted();
                assertThat(r.completionTokens).as("%s", request.sampling()).isPositive();
                assertThat(model.flags()).as("%s, top_logprobs %d", request.sampling(), request.topLogprobs())
                        .isNotEmpty().containsOnly(true);
            }
        }
    }

    @Test
    @Timeout(120)
    void overHttpALoadtestShapedRequestTakesTheArgmaxAndOneWithLogprobsTheLogits() throws Exception {
        try (var loaded = LoadedModel.open(modelPath, EngineOptions.DEFAULTS.withContextSize(256).withMaxSequences(2))) {
            var model = new Recording(loaded.model());
            var metrics = new ServerMetrics();
            var engine = new ServingEngine(model, loaded.tokenizer(),
                    TokenSamplers.standard(model.contextSize(), loaded.tokenizer()),
                    new ServingEngine.Settings(2, 4, 32, 0), metrics);
            try (engine; var http = OpenAiServer.start(engine, loaded.tokenizer(),
                    aether.llm.chat.ChatTemplate.compile("chatml", InferenceServer.CHATML, "", ""),
                    new OpenAiServer.Settings("127.0.0.1", 0, java.util.Set.of(), 0, 1 << 20, 256, "m"), metrics,
                    ModelCard.of(loaded))) {
                var client = java.net.http.HttpClient.newHttpClient();
                // what ./aether loadtest sends
                var greedy = LastLogitsEngineTest.post(client, http.port(), "/v1/completions", "{\"prompt\": "
                        + "\"Once upon a time\", \"max_tokens\": 8, \"temperature\": 0, \"ignore_eos\": true}");
                assertThat(greedy.statusCode()).as(greedy.body()).isEqualTo(200);
                assertThat(model.flags()).isNotEmpty().containsOnly(false);
                int before = model.flags().size();
                var withLogprobs = LastLogitsEngineTest.post(client, http.port(), "/v1/completions", "{\"prompt\": "
                        + "\"Once upon a time\", \"max_tokens\": 8, \"temperature\": 0, \"ignore_eos\": true, "
                        + "\"logprobs\": 2}");
                assertThat(withLogprobs.statusCode()).as(withLogprobs.body()).isEqualTo(200);
                assertThat(model.flags().subList(before, model.flags().size())).isNotEmpty().containsOnly(true);
                assertThat(LastLogitsEngineTest.JSON.readTree(withLogprobs.body()).at("/choices/0/text").asText())
                        .isEqualTo(LastLogitsEngineTest.JSON.readTree(greedy.body()).at("/choices/0/text").asText());
            }
        }
    }

    @Test
    void argmaxSufficesOnlyForPlainGreedyWithoutLogprobs() {
        var factory = TokenSamplers.standard(256);
        int vocab = 512;
        assertThat(TokenSamplers.argmaxSuffices(request(SamplingParams.GREEDY, -1),
                factory.create(SamplingParams.GREEDY, vocab, 8))).isTrue();
        assertThat(TokenSamplers.argmaxSuffices(request(SamplingParams.GREEDY.withSeed(99), -1),
                factory.create(SamplingParams.GREEDY.withSeed(99), vocab, 8))).as("the seed is not drawn").isTrue();
        for (int logprobs : new int[] {0, 2}) {
            assertThat(TokenSamplers.argmaxSuffices(request(SamplingParams.GREEDY, logprobs),
                    factory.create(SamplingParams.GREEDY, vocab, 8))).as("top_logprobs %d", logprobs).isFalse();
        }
        for (SamplingParams p : List.of(params(0.7, 0, 0, Map.of(), false), params(0, 0.1, 0, Map.of(), false),
                params(0, 0, -0.3, Map.of(), false), params(0, 0, 0, Map.of(3, -100.0), false))) {
            TokenSampler s = factory.create(p, vocab, 8);
            assertThat(s.argmaxOnly()).as("%s", p).isFalse();
            assertThat(TokenSamplers.argmaxSuffices(request(p, -1), s)).as("%s", p).isFalse();
        }
    }

    @Test
    void aPlainGreedySamplerAcceptsTheArgmaxAsItsOwnChoice() {
        var factory = TokenSamplers.standard(256);
        TokenSampler s = factory.create(SamplingParams.GREEDY, 4, 8);
        float[] logits = {0.5f, 2f, 2f, -1f};
        assertThat(s.sample(logits.clone(), 0, 4)).isEqualTo(Argmax.first(logits, 0, 4)).isEqualTo(1);
        assertThat(s.acceptArgmax(1)).isEqualTo(1);
        TokenSampler biased = factory.create(params(0, 0, 0, Map.of(2, 1.0), false), 4, 8);
        assertThat(biased.sample(logits.clone(), 0, 4)).as("the bias moves the choice off the argmax").isEqualTo(2);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> biased.acceptArgmax(1))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("needs the logits");
    }

    static GenerationRequest request(SamplingParams p, int topLogprobs) {
        return new GenerationRequest(new int[] {1, 2}, 4, List.of(), p, topLogprobs, false);
    }
}
