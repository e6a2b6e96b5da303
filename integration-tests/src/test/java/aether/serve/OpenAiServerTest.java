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
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The OpenAI API of {@code serve} over real HTTP (java.net.http) on the real stories260K model: concurrency against
 * sequential greedy output, SSE framing, usage counts, prompt forms, logprobs, stop strings, disconnects.
 */
class OpenAiServerTest {

    static final String KEY = "test-key-123";
    static final String[] PROMPTS = {"Once upon a time", "The cat", "Lily and Tom went to the park", "One day",
        "A big red ball", "The sun was", "Tim had a dog named", "She was happy"};

    static Path model;
    static InferenceServer server;
    static ServerClient client;
    static LoadedModel reference;

    static ServeSettings settings(Path model) {
        return new ServeSettings(model, "127.0.0.1", 0, Set.of(KEY), 8, 64, 0, 1024, 8, 32, 0, 64 * 1024, 400, null,
                null);
    }

    @BeforeAll
    static void start() {
        model = SharedData.require("models/stories260K.gguf");
        server = InferenceServer.start(settings(model));
        client = new ServerClient(server.port(), KEY);
        reference = LoadedModel.open(model, EngineOptions.DEFAULTS.withContextSize(1024));
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

    /** Greedy decoding one token per step over the engine contract, independent of the server. */
    static String sequentialGreedy(String prompt, int maxTokens) {
        InferenceModel m = reference.model();
        int vocab = m.config().vocabSize();
        float[] logits = new float[vocab];
        var ids = new ArrayList<Integer>();
        try (Sequence s = m.newSequence()) {
            m.step(List.of(BatchEntry.of(s, reference.tokenizer().encode(prompt, true, true))), logits);
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

    static String completionBody(String prompt, int maxTokens, boolean stream) {
        return "{\"model\":\"stories260K\",\"prompt\":" + quote(prompt) + ",\"max_tokens\":" + maxTokens
                + ",\"temperature\":0,\"stream\":" + stream + (stream ? ",\"stream_options\":{\"include_usage\":true}" : "")
                + "}";
    }

    static String quote(String s) {
        try {
            return ServerClient.JSON.writeValueAsString(s);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    @Timeout(240)
    void shouldStream32ConcurrentGreedyCompletionsEachEqualToItsSequentialOutput() throws Exception {
        int n = 32;
        var expected = new String[PROMPTS.length];
        for (int i = 0; i < PROMPTS.length; i++) {
            expected[i] = sequentialGreedy(PROMPTS[i], 24 + 4 * i);
        }
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        try {
            var futures = new ArrayList<Future<ServerClient.Stream>>();
            for (int r = 0; r < n; r++) {
                int p = r % PROMPTS.length;
                Callable<ServerClient.Stream> call = () -> client.stream("/v1/completions",
                        completionBody(PROMPTS[p], 24 + 4 * p, true));
                futures.add(pool.submit(call));
            }
            for (int r = 0; r < n; r++) {
                int p = r % PROMPTS.length;
                ServerClient.Stream s = futures.get(r).get(200, TimeUnit.SECONDS);
                assertThat(s.status()).as(s.raw()).isEqualTo(200);
                assertThat(s.contentType()).startsWith("text/event-stream");
                assertThat(s.data().getLast()).isEqualTo("[DONE]");
                var text = new StringBuilder();
                String id = null;
                String finish = null;
                JsonNode usage = null;
                for (JsonNode c : s.chunks()) {
                    id = id == null ? c.get("id").asText() : id;
                    assertThat(c.get("id").asText()).isEqualTo(id);
                    assertThat(c.get("object").asText()).isEqualTo("text_completion");
                    if (c.has("usage") && !c.get("usage").isNull()) {
                        usage = c.get("usage");
                        assertThat(c.get("choices")).isEmpty();
                        continue;
                    }
                    JsonNode choice = c.get("choices").get(0);
                    assertThat(finish).as("no chunk after the finish").isNull();
                    text.append(choice.get("text").asText());
                    if (!choice.get("finish_reason").isNull()) {
                        finish = choice.get("finish_reason").asText();
                    }
                }
                assertThat(text.toString()).as("request %d (prompt %d)", r, p).isEqualTo(expected[p]);
                assertThat(finish).isIn("stop", "length");
                assertThat(usage).isNotNull();
                int promptTokens = reference.tokenizer().encode(PROMPTS[p], true, true).length;
                assertThat(usage.get("prompt_tokens").asInt()).isEqualTo(promptTokens);
                assertThat(usage.get("total_tokens").asInt())
                        .isEqualTo(promptTokens + usage.get("completion_tokens").asInt());
                int generated = reference.tokenizer().encode(expected[p], false, false).length;
                // length: exactly max_tokens; stop: the text's tokens plus the end-of-generation token
                assertThat(usage.get("completion_tokens").asInt())
                        .isEqualTo(finish.equals("length") ? 24 + 4 * p : generated + 1);
            }
        } finally {
            pool.shutdownNow();
        }
        assertThat(client.activeBlocks()).isZero();
        assertThat(client.metric("aether_active_sequences")).isZero();
    }

    @Test
    @Timeout(60)
    void shouldAnswerAWholeCompletionWithExactUsage() {
        JsonNode r = client.postJson("/v1/completions", completionBody(PROMPTS[0], 30, false));
        assertThat(r.get("object").asText()).isEqualTo("text_completion");
        assertThat(r.get("model").asText()).isEqualTo("stories260K");
        JsonNode choice = r.get("choices").get(0);
        assertThat(choice.get("text").asText()).isEqualTo(sequentialGreedy(PROMPTS[0], 30));
        assertThat(choice.get("finish_reason").asText()).isEqualTo("length");
        assertThat(r.get("usage").get("completion_tokens").asInt()).isEqualTo(30);
        assertThat(r.get("usage").get("prompt_tokens").asInt())
                .isEqualTo(reference.tokenizer().encode(PROMPTS[0], true, true).length);
    }

    @Test
    @Timeout(60)
    void shouldAcceptEveryPromptFormOfTheCompletionsApi() {
        int[] ids = reference.tokenizer().encode(PROMPTS[1], true, true);
        String idList = java.util.Arrays.toString(ids).replace(" ", "");
        String single = client.postJson("/v1/completions", completionBody(PROMPTS[1], 12, false))
                .get("choices").get(0).get("text").asText();
        String fromIds = client.postJson("/v1/completions", "{\"prompt\":" + idList
                + ",\"max_tokens\":12,\"temperature\":0}").get("choices").get(0).get("text").asText();
        assertThat(fromIds).isEqualTo(single);
        JsonNode many = client.postJson("/v1/completions", "{\"prompt\":[" + quote(PROMPTS[0]) + ","
                + quote(PROMPTS[1]) + "],\"max_tokens\":12,\"temperature\":0}");
        assertThat(many.get("choices")).hasSize(2);
        assertThat(many.get("choices").get(0).get("index").asInt()).isZero();
        assertThat(many.get("choices").get(0).get("text").asText()).isEqualTo(sequentialGreedy(PROMPTS[0], 12));
        assertThat(many.get("choices").get(1).get("text").asText()).isEqualTo(single);
        JsonNode idLists = client.postJson("/v1/completions", "{\"prompt\":[" + idList + "," + idList
                + "],\"max_tokens\":12,\"temperature\":0}");
        assertThat(idLists.get("choices").get(1).get("text").asText()).isEqualTo(single);
        assertThat(idLists.get("usage").get("prompt_tokens").asInt()).isEqualTo(2 * ids.length);
        assertThat(idLists.get("usage").get("completion_tokens").asInt()).isEqualTo(24);
    }

    @Test
    @Timeout(60)
    void shouldStreamChatWithARoleDeltaAFinishChunkAUsageChunkAndDone() {
        String body = "{\"model\":\"stories260K\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell a story\"}],"
                + "\"max_tokens\":10,\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
        ServerClient.Stream s = client.stream("/v1/chat/completions", body);
        assertThat(s.status()).isEqualTo(200);
        List<JsonNode> chunks = s.chunks();
        assertThat(s.data().getLast()).isEqualTo("[DONE]");
        assertThat(chunks.getFirst().get("choices").get(0).get("delta").get("role").asText()).isEqualTo("assistant");
        var text = new StringBuilder();
        for (JsonNode c : chunks) {
            assertThat(c.get("object").asText()).isEqualTo("chat.completion.chunk");
            if (!c.get("choices").isEmpty() && c.get("choices").get(0).get("delta").has("content")) {
                text.append(c.get("choices").get(0).get("delta").get("content").asText());
            }
        }
        JsonNode finish = chunks.get(chunks.size() - 2);
        assertThat(finish.get("choices").get(0).get("finish_reason").asText()).isEqualTo("length");
        JsonNode usage = chunks.getLast().get("usage");
        assertThat(usage.get("completion_tokens").asInt()).isEqualTo(10);
        JsonNode whole = client.postJson("/v1/chat/completions", body.replace(",\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true}", ""));
        assertThat(whole.get("object").asText()).isEqualTo("chat.completion");
        assertThat(whole.get("choices").get(0).get("message").get("content").asText()).isEqualTo(text.toString());
        assertThat(whole.get("usage")).isEqualTo(usage);
        assertThat(whole.get("choices").get(0).get("message").get("role").asText()).isEqualTo("assistant");
    }

    @Test
    @Timeout(60)
    void shouldReportLogprobsWhoseBestAlternativeIsTheGreedyChoice() {
        JsonNode r = client.postJson("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":"
                + "\"Hello\"}],\"max_tokens\":8,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":3}");
        JsonNode content = r.get("choices").get(0).get("logprobs").get("content");
        assertThat(content).hasSize(r.get("usage").get("completion_tokens").asInt());
        for (JsonNode t : content) {
            JsonNode top = t.get("top_logprobs");
            assertThat(top).hasSize(3);
            assertThat(top.get(0).get("token").asText()).isEqualTo(t.get("token").asText());
            assertThat(top.get(0).get("logprob").asDouble()).isEqualTo(t.get("logprob").asDouble());
            assertThat(top.get(0).get("logprob").asDouble()).isGreaterThanOrEqualTo(top.get(1).get("logprob").asDouble());
            double mass = 0;
            for (JsonNode alt : top) {
                mass += Math.exp(alt.get("logprob").asDouble());
            }
            assertThat(mass).isLessThanOrEqualTo(1.0 + 1e-9);
            assertThat(t.get("bytes")).isNotEmpty();
        }
        JsonNode legacy = client.postJson("/v1/completions", "{\"prompt\":\"The cat\",\"max_tokens\":5,"
                + "\"temperature\":0,\"logprobs\":2}").get("choices").get(0).get("logprobs");
        assertThat(legacy.get("tokens")).hasSize(5);
        assertThat(legacy.get("token_logprobs")).hasSize(5);
        assertThat(legacy.get("top_logprobs").get(0).size()).isBetween(1, 2);
    }

    @Test
    @Timeout(60)
    void shouldRepeatASeededSampledCompletionAndCutAtStopStrings() {
        String body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":30,\"temperature\":0.9,\"top_p\":0.95,"
                + "\"seed\":1234}";
        String a = client.postJson("/v1/completions", body).get("choices").get(0).get("text").asText();
        String b = client.postJson("/v1/completions", body).get("choices").get(0).get("text").asText();
        assertThat(a).isEqualTo(b);
        String full = sequentialGreedy(PROMPTS[0], 30);
        String stop = full.substring(10, 14);
        JsonNode r = client.postJson("/v1/completions", "{\"prompt\":\"Once upon a time\",\"max_tokens\":30,"
                + "\"temperature\":0,\"stop\":[" + quote(stop) + "]}");
        assertThat(r.get("choices").get(0).get("text").asText()).isEqualTo(full.substring(0, full.indexOf(stop)));
        assertThat(r.get("choices").get(0).get("finish_reason").asText()).isEqualTo("stop");
    }

    @Test
    @Timeout(60)
    void shouldCancelAStreamWhoseClientDisconnectsAndFreeItsKvBlocks() throws Exception {
        double tokensBefore = client.metric("aether_completion_tokens_total");
        HttpResponse<InputStream> r = client.http.send(client.request("/v1/completions")
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Once upon a time\",\"max_tokens\":1000,"
                        + "\"temperature\":0,\"ignore_eos\":true,\"stream\":true}")).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        var in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
        for (int events = 0; events < 3; ) {
            String line = in.readLine();
            assertThat(line).isNotNull();
            if (line.startsWith("data: ")) {
                events++;
            }
        }
        assertThat(client.activeBlocks()).isPositive();
        in.close();   // the client goes away mid-stream
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (client.activeBlocks() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(client.activeBlocks()).isZero();
        assertThat(client.metric("aether_active_sequences")).isZero();
        assertThat(client.metric("aether_completion_tokens_total") - tokensBefore).isLessThan(1000);
    }

    @Test
    @Timeout(30)
    void shouldListTheModelAndReportHealthAndReadiness() {
        JsonNode models = ServerClient.parse(client.get("/v1/models").body());
        assertThat(models.get("data").get(0).get("id").asText()).isEqualTo("stories260K");
        assertThat(client.withKey(null).get("/health").statusCode()).isEqualTo(200);
        assertThat(client.withKey(null).get("/ready").statusCode()).isEqualTo(200);
        String metrics = client.withKey(null).get("/metrics").body();
        assertThat(metrics).contains("aether_time_to_first_token_seconds_bucket", "aether_inter_token_latency_seconds",
                "aether_queue_depth", "aether_kv_blocks_free", "aether_requests_total");
    }

    @Test
    @Timeout(60)
    void shouldReuseTheCachedPrefixOfTheNextTurnWithoutChangingTheOutput() {
        double hits = client.metric("aether_prefix_cache_hits_total");
        double reused = client.metric("aether_prefix_cache_reused_tokens_total");
        String turn1 = "Tim had a dog named Max";
        String answer = client.postJson("/v1/completions", completionBody(turn1, 20, false))
                .get("choices").get(0).get("text").asText();
        String turn2 = turn1 + answer + " Then";
        String next = client.postJson("/v1/completions", completionBody(turn2, 20, false))
                .get("choices").get(0).get("text").asText();
        assertThat(next).isEqualTo(sequentialGreedy(turn2, 20));
        assertThat(client.metric("aether_prefix_cache_hits_total")).isGreaterThan(hits);
        assertThat(client.metric("aether_prefix_cache_reused_tokens_total") - reused)
                .isGreaterThanOrEqualTo(reference.tokenizer().encode(turn1, true, true).length);
        assertThat(client.metric("aether_prefix_cache_hit_ratio")).isBetween(0.0, 1.0);
    }

    /** Whether {@code text} is a JSON object, or (when cut short) the start of one, as Jackson reads it. */
    static boolean jsonObjectOrPrefix(String text, boolean mustBeComplete) throws Exception {
        var parser = ServerClient.JSON.createParser(text);
        try {
            var first = parser.nextToken();
            if (first != com.fasterxml.jackson.core.JsonToken.START_OBJECT) {
                return false;
            }
            parser.skipChildren();
            return parser.nextToken() == null;
        } catch (com.fasterxml.jackson.core.io.JsonEOFException cut) {
            return !mustBeComplete;
        }
    }

    @Test
    @Timeout(120)
    void shouldConstrainJsonObjectOutputToJson() throws Exception {
        int complete = 0;
        for (String sampling : List.of("\"temperature\":0", "\"temperature\":0.8,\"seed\":1",
                "\"temperature\":1.0,\"seed\":2", "\"temperature\":0.7,\"seed\":3")) {
            JsonNode r = client.postJson("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":"
                    + "\"Give me a JSON object about a cat\"}],\"response_format\":{\"type\":\"json_object\"},"
                    + "\"max_tokens\":" + (40 + 30 * complete) + "," + sampling + "}");
            String content = r.get("choices").get(0).get("message").get("content").asText();
            boolean stopped = r.get("choices").get(0).get("finish_reason").asText().equals("stop");
            // the budget closes the object in time (the vocabulary has byte tokens), so it always ends and parses
            assertThat(stopped).as("%s: %s", sampling, content).isTrue();
            assertThat(jsonObjectOrPrefix(content.strip(), true)).as("%s: %s", sampling, content).isTrue();
            assertThat(ServerClient.parse(content).isObject()).isTrue();
            complete++;
        }
        assertThat(complete).isEqualTo(4);
    }

    @Test
    @Timeout(60)
    void shouldCancelAWholeRequestWhoseClientHangsUp() throws Exception {
        double tokensBefore = client.metric("aether_completion_tokens_total");
        var http = java.net.http.HttpClient.newHttpClient();
        var pending = http.sendAsync(client.request("/v1/completions").header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Once upon a time\",\"max_tokens\":1000,"
                        + "\"temperature\":0,\"ignore_eos\":true}")).build(), HttpResponse.BodyHandlers.ofString());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (client.activeBlocks() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(client.activeBlocks()).as("generating").isPositive();
        http.shutdownNow();   // closes its connections mid-request
        pending.cancel(true);
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (client.activeBlocks() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(client.activeBlocks()).isZero();
        assertThat(client.metric("aether_completion_tokens_total") - tokensBefore).isLessThan(1000);
    }
}
