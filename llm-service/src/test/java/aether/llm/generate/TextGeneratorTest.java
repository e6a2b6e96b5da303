package aether.llm.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.llm.sampling.SamplerConfig;
import aether.llm.sampling.TokenLogprobs;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The generation loop on the real stories260K model against llama.cpp's greedy outputs. */
@Timeout(120)
class TextGeneratorTest {

    record Golden(String prompt, int[] promptIds, int[] ids, String text, double[] logprobs) {}

    static List<Golden> goldens() throws IOException {
        Path file = SharedData.require("golden/forward/stories260K.jsonl");
        var mapper = new ObjectMapper();
        List<Golden> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            JsonNode n = mapper.readTree(line);
            out.add(new Golden(n.get("prompt").asText(), ints(n.get("prompt_ids")), ints(n.get("generated_ids")),
                    n.get("generated_text").asText(), doubles(n.get("generated_logprobs"))));
        }
        return out;
    }

    private static int[] ints(JsonNode a) {
        int[] v = new int[a.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = a.get(i).asInt();
        }
        return v;
    }

    private static double[] doubles(JsonNode a) {
        double[] v = new double[a.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = a.get(i).asDouble();
        }
        return v;
    }

    static LoadedModel open(EngineOptions options) {
        return LoadedModel.open(SharedData.require("models/stories260K.gguf"), options);
    }

    /** Collects streamed text pieces and token callbacks. */
    static final class Recorder implements GenerationListener {
        final List<String> pieces = new ArrayList<>();
        final List<Integer> tokens = new ArrayList<>();
        final List<Double> logprobs = new ArrayList<>();

        @Override
        public void onText(CharSequence text) {
            assertThat(text.length()).isPositive();
            pieces.add(text.toString());
        }

        @Override
        public void onToken(int token, TokenLogprobs lp) {
            tokens.add(token);
            if (lp != null) {
                assertThat(lp.chosen()).isEqualTo(token);
                logprobs.add(lp.chosenLogprob());
            }
        }

        String text() {
            return String.join("", pieces);
        }
    }

    @Test
    void shouldReproduceLlamaCppGreedyTokensTextAndLogprobsInChunkedPrefill() throws IOException {
        for (int batch : new int[] {512, 2}) {
            // an f32 KV cache, as llama.cpp's golden run (-ctk f32 -ctv f32), so the log-probabilities compare
            try (LoadedModel m = open(EngineOptions.DEFAULTS.withBatchSize(batch).withKvType("f32"))) {
                var generator = new TextGenerator(m.model(), m.tokenizer(), batch, 1);
                for (Golden g : goldens()) {
                    assertThat(m.tokenizer().encode(g.prompt(), true, true)).containsExactly(g.promptIds());
                    var rec = new Recorder();
                    Completion c = generator.generate(GenerationRequest.of(g.promptIds(), g.ids().length,
                            SamplerConfig.greedy()).withTopLogprobs(8), rec);
                    assertThat(c.tokens()).as("batch %d, %s", batch, g.prompt()).containsExactly(g.ids());
                    assertThat(c.text()).isEqualTo(g.text());
                    assertThat(rec.text()).isEqualTo(g.text());
                    assertThat(c.finishReason()).isEqualTo(FinishReason.LENGTH);
                    for (int i = 0; i < g.ids().length; i++) {
                        assertThat(rec.logprobs.get(i)).as("logprob %d", i).isCloseTo(g.logprobs()[i], within(2e-3));
                    }
                    GenerationTimings t = c.timings();
                    assertThat(t.promptTokens()).isEqualTo(g.promptIds().length);
                    assertThat(t.decodeTokens()).isEqualTo(g.ids().length - 1);
                    assertThat(t.promptNs()).isPositive();
                    assertThat(t.decodeNs()).isPositive();
                    assertThat(c.contextTokens()).hasSize(g.promptIds().length + g.ids().length - 1);
                }
            }
        }
    }

    @Test
    void shouldStopBeforeAStopStringAndNeverStreamIt() throws IOException {
        Golden g = goldens().getFirst();
        try (LoadedModel m = open(EngineOptions.DEFAULTS)) {
            var generator = new TextGenerator(m.model(), m.tokenizer(), 512, 1);
            // "Lily. She" spans several tokens; "park" a single one; "xyz" never comes
            for (String stop : List.of("Lily. She", "park", "a little")) {
                var rec = new Recorder();
                Completion c = generator.generate(GenerationRequest.of(g.promptIds(), 48, SamplerConfig.greedy())
                        .withStopStrings(List.of("xyz", stop)), rec);
                String expected = g.text().substring(0, g.text().indexOf(stop));
                assertThat(c.text()).as(stop).isEqualTo(expected);
                assertThat(rec.text()).isEqualTo(expected);
                assertThat(c.finishReason()).isEqualTo(FinishReason.STOP_STRING);
                assertThat(c.stopString()).isEqualTo(stop);
                assertThat(c.tokens()).containsExactly(Arrays.copyOf(g.ids(), c.tokens().length));
                String decoded = m.tokenizer().decode(concat(g.promptIds(), c.tokens()));
                assertThat(decoded).as("the last token completed the stop string").contains(stop);
                String withoutLast = m.tokenizer().decode(concat(g.promptIds(),
                        Arrays.copyOf(c.tokens(), c.tokens().length - 1)));
                assertThat(withoutLast.substring(withoutLast.indexOf(g.prompt()) + g.prompt().length())).doesNotContain(stop);
            }
        }
    }

    private static int[] concat(int[] a, int[] b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    @Test
    void shouldStopOnAUserStopTokenWithoutRenderingIt() throws IOException {
        Golden g = goldens().get(1);
        try (LoadedModel m = open(EngineOptions.DEFAULTS)) {
            var generator = new TextGenerator(m.model(), m.tokenizer(), 512, 1);
            int stop = g.ids()[6];
            int firstAt = 0;
            while (g.ids()[firstAt] != stop) {
                firstAt++;
            }
            Completion c = generator.generate(GenerationRequest.of(g.promptIds(), 48, SamplerConfig.greedy())
                    .withStopTokens(stop), GenerationListener.NONE);
            assertThat(c.finishReason()).isEqualTo(FinishReason.STOP_TOKEN);
            assertThat(c.tokens()).containsExactly(Arrays.copyOf(g.ids(), firstAt + 1));
            String continuation = m.tokenizer().decode(concat(g.promptIds(), Arrays.copyOf(g.ids(), firstAt)));
            assertThat(g.prompt() + c.text()).isEqualTo(continuation.stripLeading());
        }
    }

    @Test
    void shouldStopWithContextFullOrShiftAndGoOnConsistently() throws IOException {
        Golden g = goldens().getFirst();
        try (LoadedModel m = open(EngineOptions.DEFAULTS.withContextSize(16))) {
            var generator = new TextGenerator(m.model(), m.tokenizer(), 512, 1);
            Completion full = generator.generate(GenerationRequest.of(g.promptIds(), 100, SamplerConfig.greedy()),
                    GenerationListener.NONE);
            assertThat(full.finishReason()).isEqualTo(FinishReason.CONTEXT_FULL);
            assertThat(full.tokens()).containsExactly(Arrays.copyOf(g.ids(), 16 - g.promptIds().length + 1));
            assertThat(full.contextTokens()).hasSize(16);

            Completion shifted = generator.generate(GenerationRequest.of(g.promptIds(), 40, SamplerConfig.greedy())
                    .withContextShift(true, 1), GenerationListener.NONE);
            assertThat(shifted.finishReason()).isEqualTo(FinishReason.LENGTH);
            assertThat(shifted.tokens()).hasSize(40);
            assertThat(shifted.contextShifts()).isGreaterThanOrEqualTo(2);
            assertThat(Arrays.copyOf(shifted.tokens(), 12)).containsExactly(Arrays.copyOf(g.ids(), 12));
            int[] held = shifted.contextTokens();
            assertThat(held[0]).as("kept BOS").isEqualTo(1);
            assertThat(held.length).isLessThanOrEqualTo(16);
            // the KV after the shifts equals a fresh prefill of the same tokens: the last token comes out the same
            Completion fresh = generator.generate(GenerationRequest.of(held, 1, SamplerConfig.greedy()),
                    GenerationListener.NONE);
            int[] tokens = shifted.tokens();
            assertThat(fresh.tokens()).containsExactly(tokens[tokens.length - 1]);
        }
    }

    @Test
    void shouldInterleaveSeveralSequencesAndMatchEachAlone() throws IOException {
        List<Golden> goldens = goldens();
        try (LoadedModel m = open(EngineOptions.DEFAULTS.withMaxSequences(3).withContextSize(128))) {
            var generator = new TextGenerator(m.model(), m.tokenizer(), 4, 3);
            List<Sequence> sequences = new ArrayList<>();
            List<ActiveGeneration> running = new ArrayList<>();
            List<Recorder> recorders = new ArrayList<>();
            for (Golden g : goldens) {
                Sequence s = m.model().newSequence();
                sequences.add(s);
                var rec = new Recorder();
                recorders.add(rec);
                running.add(generator.submit(GenerationRequest.of(g.promptIds(), 20 + 7 * running.size(),
                        SamplerConfig.greedy()), s, 0, rec));
                generator.step();   // staggered arrivals: the next joins while this one runs
            }
            int steps = 0;
            while (generator.hasActive()) {
                generator.step();
                steps++;
            }
            for (int i = 0; i < goldens.size(); i++) {
                Golden g = goldens.get(i);
                Completion c = running.get(i).completion();
                assertThat(c.tokens()).containsExactly(Arrays.copyOf(g.ids(), 20 + 7 * i));
                assertThat(recorders.get(i).text()).isEqualTo(c.text());
                assertThat(g.text()).startsWith(c.text());
            }
            assertThat(steps).as("steps shared between sequences").isLessThan(20 + 27 + 34);
            sequences.forEach(Sequence::close);
            assertThat(m.model().kvStats().usedBlocks()).isZero();
        }
    }

    @Test
    void shouldReuseACachedPrefixAndGiveTheSameTokensAsAFreshRun() throws IOException {
        Golden g = goldens().get(2);
        try (LoadedModel m = open(EngineOptions.DEFAULTS)) {
            var generator = new TextGenerator(m.model(), m.tokenizer(), 512, 1);
            try (Sequence s = m.model().newSequence()) {
                Completion first = generator.generate(GenerationRequest.of(g.promptIds(), 10, SamplerConfig.greedy()),
                        s, 0, GenerationListener.NONE);
                int[] held = first.contextTokens();
                assertThat(s.length()).isEqualTo(held.length);
                int[] follow = concat(held, m.tokenizer().encode(" The end.", false, false));
                Completion second = generator.generate(GenerationRequest.of(follow, 12, SamplerConfig.greedy()),
                        s, held.length, GenerationListener.NONE);
                assertThat(second.cachedTokens()).isEqualTo(held.length);
                assertThat(second.timings().promptTokens()).isEqualTo(follow.length - held.length);
                Completion fresh = generator.generate(GenerationRequest.of(follow, 12, SamplerConfig.greedy()),
                        GenerationListener.NONE);
                assertThat(second.tokens()).containsExactly(fresh.tokens());
                assertThat(second.text()).isEqualTo(fresh.text());
            }
        }
    }

    @Test
    void shouldRepeatASampledRunForTheSameSeed() throws IOException {
        Golden g = goldens().getFirst();
        try (LoadedModel m = open(EngineOptions.DEFAULTS)) {
            var generator = new TextGenerator(m.model(), m.tokenizer(), 512, 1);
            SamplerConfig config = SamplerConfig.defaults(7).withTemperature(1.2f).withTopK(0).withMinP(0f)
                    .withPenalties(1.1f, 0f, 0f, 64);
            Completion a = generator.generate(GenerationRequest.of(g.promptIds(), 40, config), GenerationListener.NONE);
            Completion b = generator.generate(GenerationRequest.of(g.promptIds(), 40, config), GenerationListener.NONE);
            Completion c = generator.generate(GenerationRequest.of(g.promptIds(), 40, config.withSeed(8)),
                    GenerationListener.NONE);
            assertThat(b.tokens()).containsExactly(a.tokens());
            assertThat(b.text()).isEqualTo(a.text());
            assertThat(c.tokens()).isNotEqualTo(a.tokens());
        }
    }

    @Test
    void shouldRejectBadRequests() {
        try (LoadedModel m = open(EngineOptions.DEFAULTS.withContextSize(8))) {
            var generator = new TextGenerator(m.model(), m.tokenizer(), 512, 1);
            assertThatThrownBy(() -> generator.generate(GenerationRequest.of(new int[9], 1, SamplerConfig.greedy()),
                    GenerationListener.NONE)).hasMessageContaining("does not fit the context size 8");
            assertThatThrownBy(() -> generator.generate(GenerationRequest.of(new int[] {1, 600}, 1,
                    SamplerConfig.greedy()), GenerationListener.NONE)).hasMessageContaining("600");
            assertThatThrownBy(() -> GenerationRequest.of(new int[0], 1, SamplerConfig.greedy()))
                    .hasMessageContaining("empty prompt");
            assertThatThrownBy(() -> GenerationRequest.of(new int[] {1}, 1, SamplerConfig.greedy())
                    .withStopStrings(List.of(""))).hasMessageContaining("empty stop string");
        }
    }
}
