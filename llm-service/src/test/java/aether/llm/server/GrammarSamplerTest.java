package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.gguf.GgufFile;
import aether.llm.sampling.Sampler;
import aether.llm.sampling.SamplerConfig;
import aether.llm.tokenizer.Tokenizer;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The constrained sampler on the real 32,000-token Llama vocabulary: the full mask agrees token by token with checking
 * each token alone, and sampling from random logits always ends in a valid, complete document within the budget.
 */
class GrammarSamplerTest {

    static Tokenizer tokenizer;
    static VocabIndex index;

    @BeforeAll
    static void load() throws Exception {
        try (GgufFile f = GgufFile.open(SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf"))) {
            tokenizer = Tokenizer.fromGguf(f.metadata());
        }
        index = new VocabIndex(tokenizer);
    }

    static SchemaGrammar grammar(String schema) throws Exception {
        return new SchemaGrammar(JsonSchemaCompiler.compile(new ObjectMapper().readTree(schema)));
    }

    static GrammarSampler sampler(SchemaGrammar g, SamplerConfig config, int budget) {
        return new GrammarSampler(new Sampler(config, tokenizer.vocabSize()), tokenizer, index, g, budget);
    }

    @Test
    @Timeout(120)
    void shouldMaskExactlyTheTokensThatKeepTheDocumentValid() throws Exception {
        SchemaGrammar g = grammar(GrammarSamplerBenchmark.SCHEMA);
        for (String prefix : List.of("", "{\"name\":\"Tom", "{\"name\":\"Tom\",", "{\"name\":\"Tom\",\"age\":",
                "{\"name\":\"Tom\",\"age\":1", "{\"tags\":[")) {
            GrammarSampler s = sampler(g, SamplerConfig.greedy(), 4096);
            s.prime(prefix);
            List<Integer> allowed = s.allowedTokens(4000);
            var expected = new java.util.ArrayList<Integer>();
            var state = SchemaGrammar.feed(g.initial(), prefix.getBytes(StandardCharsets.UTF_8));
            for (int t = 0; t < tokenizer.vocabSize(); t++) {
                if (tokenizer.isSpecial(t) || tokenizer.isEndOfGeneration(t) || index.pieces[t].length == 0) {
                    continue;
                }
                if (!SchemaGrammar.feed(state, index.pieces[t]).isEmpty()) {
                    expected.add(t);
                }
            }
            assertThat(allowed).as("after %s", prefix).isEqualTo(expected);
            if (prefix.endsWith("Tom")) {
                assertThat(allowed.size()).as("inside a string most tokens fit").isGreaterThan(25_000);
            }
        }
    }

    @Test
    @Timeout(120)
    void shouldPriceEveryTokenAgainstTheBudgetAsPerTokenChecksDo() throws Exception {
        SchemaGrammar g = grammar("{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\","
                + "\"minLength\":3,\"maxLength\":6},\"n\":{\"type\":\"integer\"}},\"required\":[\"name\",\"n\"],"
                + "\"additionalProperties\":false}");
        for (String prefix : List.of("{\"name\":\"a", "{\"name\":\"abcde", "{\"n\":1,\"name\":\"", "{\"name\":\"ab\\",
                "{\"name\":\"é", "{\"name\":\"abcd€")) {
            var state = SchemaGrammar.feed(g.initial(), prefix.getBytes(StandardCharsets.UTF_8));
            int distance = SchemaGrammar.distance(state);
            for (int left : new int[] {4000, 12, 9, 6}) {
                GrammarSampler s = sampler(g, SamplerConfig.greedy(), 4096);
                s.prime(prefix);
                var expected = new java.util.ArrayList<Integer>();
                for (int t = 0; t < tokenizer.vocabSize(); t++) {
                    if (tokenizer.isSpecial(t) || tokenizer.isEndOfGeneration(t) || index.pieces[t].length == 0) {
                        continue;
                    }
                    var next = SchemaGrammar.feed(state, index.pieces[t]);
                    if (!next.isEmpty() && (SchemaGrammar.distance(next) <= left - 2
                            || SchemaGrammar.distance(next) < distance)) {
                        expected.add(t);
                    }
                }
                assertThat(s.allowedTokens(left)).as("after %s with %d tokens left", prefix, left)
                        .isEqualTo(expected);
            }
        }
    }

    @Test
    @Timeout(120)
    void shouldEndEveryRandomSampleInAValidDocumentWithinTheBudget() throws Exception {
        SchemaGrammar g = grammar(GrammarSamplerBenchmark.SCHEMA);
        int shortest = SchemaGrammar.distance(g.initial());
        Random random = new Random(7);
        float[] logits = new float[tokenizer.vocabSize()];
        for (int run = 0; run < 40; run++) {
            int budget = shortest + 1 + random.nextInt(60);
            GrammarSampler s = sampler(g, SamplerConfig.defaults(run).withTopK(0), budget);
            var out = new java.io.ByteArrayOutputStream();
            boolean ended = false;
            for (int i = 0; i < budget; i++) {
                for (int t = 0; t < logits.length; t++) {
                    logits[t] = (float) (random.nextGaussian() * 4);
                }
                int token = s.sample(logits, 0, logits.length);
                if (tokenizer.isEndOfGeneration(token)) {
                    ended = true;
                    break;
                }
                out.writeBytes(index.pieces[token]);
            }
            String doc = out.toString(StandardCharsets.UTF_8);
            assertThat(ended).as("run %d ends within %d tokens: %s", run, budget, doc).isTrue();
            assertThat(g.complete(SchemaGrammar.feed(g.initial(), out.toByteArray()))).as(doc).isTrue();
            var node = new ObjectMapper().readTree(doc.replace('\u2581', ' '));
            assertThat(node.get("age").asInt()).isBetween(0, 120);
            assertThat(s.fullMasks).as("random logits mostly pick refused tokens").isPositive();
        }
    }
}
