package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.llm.server.InferenceServer;
import aether.llm.server.ServeSettings;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code POST /v1/embeddings} over real HTTP on stories260K: the vectors against mean-pooled, L2-normalised final
 * hidden states computed over the engine contract, every input form, base64, dimensions, exact usage, errors naming
 * the field, metrics, and embeddings alongside streaming generations.
 */
class OpenAiEmbeddingsTest {

    static final String KEY = "embed-key";
    /**
     * The server's KV cache is f16 and its prefill chunks (32 tokens here) differ from the single step below: a K/V
     * value can round to the neighbouring f16 value, which moves a unit vector's components by up to ~1e-4.
     */
    static final double TOLERANCE = 5e-4;

    static InferenceServer server;
    static ServerClient client;
    static LoadedModel reference;
    static int embd;

    @BeforeAll
    static void start() {
        Path model = SharedData.require("models/stories260K.gguf");
        // max concurrency 4, queue 16, context 512, batch 32, prompt limit 300 tokens
        server = InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, Set.of(KEY), 4, 16, 0, 512, 4, 32, 0,
                1 << 20, 300, null, null));
        client = new ServerClient(server.port(), KEY);
        reference = LoadedModel.open(model, EngineOptions.DEFAULTS.withContextSize(512));
        embd = reference.model().config().embeddingLength();
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
        if (reference != null) {
            reference.close();
        }
    }

    static int[] encode(String text) {
        return reference.tokenizer().encode(text, true, true);
    }

    /** Mean of the final hidden states (one step over the engine contract), L2-normalised, in double. */
    static double[] expected(int[] ids) {
        InferenceModel m = reference.model();
        float[] h = new float[ids.length * embd];
        try (Sequence s = m.newSequence()) {
            m.step(List.of(BatchEntry.of(s, ids)), InferenceModel.Output.ALL_HIDDEN, h);
        }
        double[] v = new double[embd];
        for (int t = 0; t < ids.length; t++) {
            for (int i = 0; i < embd; i++) {
                v[i] += h[t * embd + i] / ids.length;
            }
        }
        double n = 0;
        for (double x : v) {
            n += x * x;
        }
        for (int i = 0; i < embd; i++) {
            v[i] /= Math.sqrt(n);
        }
        return v;
    }

    /** Greedy text over the engine contract, stopping at end-of-generation (as the server does). */
    static String greedy(String prompt, int maxTokens) {
        InferenceModel m = reference.model();
        int vocab = m.config().vocabSize();
        float[] logits = new float[vocab];
        var ids = new ArrayList<Integer>();
        try (Sequence s = m.newSequence()) {
            m.step(List.of(BatchEntry.of(s, encode(prompt))), logits);
            while (true) {
                int best = 0;
                for (int t = 1; t < vocab; t++) {
                    if (logits[t] > logits[best]) {
                        best = t;
                    }
                }
                if (reference.tokenizer().isEndOfGeneration(best)) {
                    break;
                }
                ids.add(best);
                if (ids.size() == maxTokens) {
                    break;
                }
                m.step(List.of(BatchEntry.of(s, best)), logits);
            }
        }
        return reference.tokenizer().decode(ids.stream().mapToInt(Integer::intValue).toArray());
    }

    static float[] floats(JsonNode embedding) {
        float[] out = new float[embedding.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) embedding.get(i).asDouble();
        }
        return out;
    }

    static void assertClose(float[] got, double[] want) {
        assertThat(got).hasSize(want.length);
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            worst = Math.max(worst, Math.abs(got[i] - want[i]));
        }
        assertThat(worst).as("max |embedding - expected|").isLessThanOrEqualTo(TOLERANCE);
    }

    static JsonNode ok(String body) {
        HttpResponse<String> r = client.post("/v1/embeddings", body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return ServerClient.parse(r.body());
    }

    static JsonNode error(String body, int status) {
        HttpResponse<String> r = client.post("/v1/embeddings", body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(status);
        return ServerClient.parse(r.body()).get("error");
    }

    @Test
    @Timeout(60)
    void shouldEmbedAStringAsTheNormalisedMeanOfItsFinalHiddenStates() {
        String text = "Once upon a time there was a little girl named Lily";
        JsonNode r = ok("{\"model\":\"" + server.modelId() + "\",\"input\":" + OpenAiServerTest.quote(text) + "}");
        assertThat(r.get("object").asText()).isEqualTo("list");
        assertThat(r.get("model").asText()).isEqualTo(server.modelId());
        assertThat(r.get("data")).hasSize(1);
        JsonNode d = r.get("data").get(0);
        assertThat(d.get("object").asText()).isEqualTo("embedding");
        assertThat(d.get("index").asInt()).isZero();
        assertClose(floats(d.get("embedding")), expected(encode(text)));
        int tokens = encode(text).length;
        assertThat(r.get("usage").get("prompt_tokens").asInt()).isEqualTo(tokens);
        assertThat(r.get("usage").get("total_tokens").asInt()).isEqualTo(tokens);
    }

    @Test
    @Timeout(60)
    void shouldAcceptEveryInputFormInOrderWithExactUsage() {
        String[] texts = {"The cat", "A big red ball", "Tim had a dog named Max"};
        JsonNode strings = ok("{\"input\":[\"The cat\",\"A big red ball\",\"Tim had a dog named Max\"]}");
        int total = 0;
        for (int i = 0; i < texts.length; i++) {
            JsonNode d = strings.get("data").get(i);
            assertThat(d.get("index").asInt()).isEqualTo(i);
            assertClose(floats(d.get("embedding")), expected(encode(texts[i])));
            total += encode(texts[i]).length;
        }
        assertThat(strings.get("usage").get("prompt_tokens").asInt()).isEqualTo(total);

        int[] ids = encode(texts[2]);
        JsonNode tokenIds = ok("{\"input\":" + java.util.Arrays.toString(ids) + "}");
        assertThat(tokenIds.get("data")).hasSize(1);
        assertClose(floats(tokenIds.get("data").get(0).get("embedding")), expected(ids));
        assertThat(tokenIds.get("usage").get("prompt_tokens").asInt()).isEqualTo(ids.length);

        int[] a = {1, 300, 301, 5};
        JsonNode lists = ok("{\"input\":[" + java.util.Arrays.toString(a) + ","
                + java.util.Arrays.toString(ids) + "]}");
        assertThat(lists.get("data")).hasSize(2);
        assertClose(floats(lists.get("data").get(0).get("embedding")), expected(a));
        assertClose(floats(lists.get("data").get(1).get("embedding")), expected(ids));
        assertThat(lists.get("usage").get("total_tokens").asInt()).isEqualTo(a.length + ids.length);
        // batched in one request = each alone (same server, same chunking of each input)
        assertThat(floats(lists.get("data").get(1).get("embedding")))
                .containsExactly(floats(tokenIds.get("data").get(0).get("embedding")),
                        org.assertj.core.api.Assertions.within(2e-4f));
    }

    @Test
    @Timeout(60)
    void base64ShouldCarryTheSameFloat32sAndDimensionsShouldTruncateAndRenormalise() {
        String input = "\"The sun was shining\"";
        float[] plain = floats(ok("{\"input\":" + input + "}").get("data").get(0).get("embedding"));
        String b64 = ok("{\"input\":" + input + ",\"encoding_format\":\"base64\"}").get("data").get(0)
                .get("embedding").asText();
        ByteBuffer bytes = ByteBuffer.wrap(Base64.getDecoder().decode(b64)).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(bytes.remaining()).isEqualTo(embd * 4);
        float[] decoded = new float[embd];
        bytes.asFloatBuffer().get(decoded);
        assertThat(decoded).containsExactly(plain);   // JSON floats are written shortest-exact: same float32 values

        float[] cut = floats(ok("{\"input\":" + input + ",\"dimensions\":10}").get("data").get(0).get("embedding"));
        assertThat(cut).hasSize(10);
        double n = 0;
        for (int i = 0; i < 10; i++) {
            n += (double) plain[i] * plain[i];
        }
        for (int i = 0; i < 10; i++) {
            assertThat((double) cut[i]).isCloseTo(plain[i] / Math.sqrt(n),
                    org.assertj.core.api.Assertions.within(1e-6));
        }
        assertThat(ok("{\"input\":" + input + ",\"dimensions\":" + embd + ",\"user\":\"u-1\"}").get("data").get(0)
                .get("embedding")).hasSize(embd);
    }

    @Test
    @Timeout(60)
    void badRequestsShouldBe400sNamingTheFieldAndTheLimit() {
        int vocab = reference.model().config().vocabSize();
        assertThat(error("{}", 400).get("param").asText()).isEqualTo("input");
        assertThat(error("{\"input\":\"\"}", 400).get("message").asText()).contains("empty");
        assertThat(error("{\"input\":[]}", 400).get("param").asText()).isEqualTo("input");
        assertThat(error("{\"input\":[\"a\",\"\"]}", 400).get("param").asText()).isEqualTo("input[1]");
        assertThat(error("{\"input\":[[1,2],[]]}", 400).get("param").asText()).isEqualTo("input[1]");
        JsonNode vocabErr = error("{\"input\":[[1,2],[3," + vocab + "]]}", 400);
        assertThat(vocabErr.get("param").asText()).isEqualTo("input[1][1]");
        assertThat(vocabErr.get("message").asText()).contains(Integer.toString(vocab - 1));
        assertThat(error("{\"input\":[1,-1]}", 400).get("param").asText()).isEqualTo("input[1]");
        assertThat(error("{\"input\":[\"a\",7]}", 400).get("param").asText()).isEqualTo("input[1]");
        assertThat(error("{\"input\":42}", 400).get("param").asText()).isEqualTo("input");
        JsonNode longErr = error("{\"input\":" + OpenAiServerTest.quote("a b ".repeat(400)) + "}", 400);
        assertThat(longErr.get("param").asText()).isEqualTo("input");
        assertThat(longErr.get("code").asText()).isEqualTo("context_length_exceeded");
        assertThat(longErr.get("message").asText()).contains("at most 300");
        assertThat(error("{\"input\":\"x\",\"encoding_format\":\"int8\"}", 400).get("param").asText())
                .isEqualTo("encoding_format");
        JsonNode dims = error("{\"input\":\"x\",\"dimensions\":" + (embd + 1) + "}", 400);
        assertThat(dims.get("param").asText()).isEqualTo("dimensions");
        assertThat(dims.get("message").asText()).contains(Integer.toString(embd));
        assertThat(error("{\"input\":\"x\",\"dimensions\":0}", 400).get("param").asText()).isEqualTo("dimensions");
        assertThat(error("{\"input\":\"x\",\"user\":5}", 400).get("param").asText()).isEqualTo("user");
        assertThat(error("{\"input\":\"x\",\"temperature\":1}", 400).get("param").asText()).isEqualTo("temperature");
        assertThat(error("{\"input\":\"x\",\"model\":\"gpt-4\"}", 404).get("code").asText())
                .isEqualTo("model_not_found");
        assertThat(error("{\"input\":", 400).get("message").asText()).contains("malformed JSON");
        assertThat(client.withKey(null).post("/v1/embeddings", "{\"input\":\"x\"}").statusCode()).isEqualTo(401);
        assertThat(client.withKey("wrong").post("/v1/embeddings", "{\"input\":\"x\"}").statusCode()).isEqualTo(401);
        assertThat(client.get("/v1/embeddings").statusCode()).isEqualTo(405);
        assertThat(client.get("/health").statusCode()).isEqualTo(200);
    }

    @Test
    @Timeout(120)
    void embeddingsShouldRunAlongsideStreamsAndBeCountedInMetrics() throws Exception {
        double inputsBefore = client.metric("aether_embedding_inputs_total");
        double tokensBefore = client.metric("aether_embedding_tokens_total");
        String expectedText = greedy("Once upon a time", 48);
        var pool = Executors.newVirtualThreadPerTaskExecutor();
        try {
            var streams = new ArrayList<Future<String>>();
            for (int i = 0; i < 3; i++) {
                Callable<String> c = () -> {
                    var s = client.stream("/v1/completions", OpenAiServerTest.completionBody("Once upon a time", 48,
                            true));
                    var text = new StringBuilder();
                    for (JsonNode chunk : s.chunks()) {
                        if (chunk.get("choices").size() > 0) {
                            text.append(chunk.get("choices").get(0).get("text").asText());
                        }
                    }
                    return text.toString();
                };
                streams.add(pool.submit(c));
            }
            String[] texts = {"The cat sat on the mat", "Lily", "One day a bird flew over the tall green tree"};
            int tokens = 0;
            for (int k = 0; k < 6; k++) {
                String t = texts[k % texts.length];
                JsonNode r = ok("{\"input\":" + OpenAiServerTest.quote(t) + "}");
                assertClose(floats(r.get("data").get(0).get("embedding")), expected(encode(t)));
                tokens += encode(t).length;
            }
            for (Future<String> f : streams) {
                assertThat(f.get()).isEqualTo(expectedText);
            }
            assertThat(client.metric("aether_embedding_inputs_total")).isEqualTo(inputsBefore + 6);
            assertThat(client.metric("aether_embedding_tokens_total")).isEqualTo(tokensBefore + tokens);
            assertThat(client.get("/metrics").body()).containsPattern(
                    "aether_requests_total\\{endpoint=\"embeddings\",status=\"200\"} [1-9]");
        } finally {
            pool.shutdownNow();
        }
    }
}
