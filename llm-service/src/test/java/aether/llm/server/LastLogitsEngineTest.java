package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.chat.ChatTemplate;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.llm.model.ModelConfig;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The server in front of an engine that computes last-token logits only, as the CUDA engine does: embeddings and
 * echo-with-logprobs scoring get a 501 in OpenAI's error shape naming {@code --device cpu} (before admission: no
 * step fails, nothing hangs), while completions, chat and generated-token logprobs work as usual. The engine is the
 * CPU engine on stories260K behind a wrapper that says it computes {@link InferenceModel.Output#LAST_LOGITS} only.
 */
class LastLogitsEngineTest {

    /** The CPU model, claiming only what the CUDA engine computes; any other output kind fails the test loudly. */
    record LastLogitsOnly(InferenceModel cpu) implements InferenceModel {
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
            if (output != Output.LAST_LOGITS) {
                throw new AssertionError("a step with " + output + " reached an engine that refuses it");
            }
            cpu.step(batch, output, out);
        }

        @Override
        public boolean computes(Output output) {
            return output == Output.LAST_LOGITS;
        }

        @Override
        public KvStats kvStats() {
            return cpu.kvStats();
        }

        @Override
        public void close() {}
    }

    static final ObjectMapper JSON = new ObjectMapper();

    static HttpResponse<String> post(HttpClient client, int port, String path, String body) throws Exception {
        return client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .timeout(Duration.ofSeconds(30)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static void assertRefused(HttpResponse<String> r, String param, String feature) throws Exception {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(501);
        JsonNode error = JSON.readTree(r.body()).get("error");
        assertThat(error.get("code").asText()).isEqualTo("not_implemented");
        assertThat(error.get("param").asText()).isEqualTo(param);
        assertThat(error.get("message").asText()).contains(feature).contains("--device cpu");
    }

    @Test
    @Timeout(120)
    void embeddingsAndEchoScoringAre501NamingTheCpuWhileGenerationWorks() throws Exception {
        var path = SharedData.require("models/stories260K.gguf");
        var options = EngineOptions.DEFAULTS.withContextSize(256).withMaxSequences(2);
        try (LoadedModel loaded = LoadedModel.open(path, options)) {
            var metrics = new ServerMetrics();
            var engine = new ServingEngine(new LastLogitsOnly(loaded.model()), loaded.tokenizer(),
                    TokenSamplers.standard(loaded.model().contextSize(), loaded.tokenizer()),
                    new ServingEngine.Settings(2, 4, 32, 0), metrics);
            try (engine; var http = OpenAiServer.start(engine, loaded.tokenizer(),
                    ChatTemplate.compile("chatml", InferenceServer.CHATML, "", ""),
                    new OpenAiServer.Settings("127.0.0.1", 0, Set.of(), 0, 1 << 20, 256, "m"), metrics,
                    ModelCard.of(loaded))) {
                HttpClient client = HttpClient.newHttpClient();
                int port = http.port();
                for (int i = 0; i < 8; i++) {   // more than max-concurrency + queue (6): a leaked slot would 429
                    assertRefused(post(client, port, "/v1/embeddings", "{\"input\": \"Once upon a time\"}"),
                            "input", "embeddings");
                }
                assertRefused(post(client, port, "/v1/embeddings", "{\"input\": [\"a\", \"The cat\"]}"), "input",
                        "embeddings");
                assertRefused(post(client, port, "/v1/completions",
                        "{\"prompt\": \"Once upon a time\", \"echo\": true, \"logprobs\": 2, \"max_tokens\": 3}"),
                        "prompt", "prompt log-probabilities");
                assertRefused(post(client, port, "/v1/completions", "{\"prompt\": \"Once upon a time\", \"echo\": true, "
                        + "\"logprobs\": 0, \"max_tokens\": 0, \"stream\": true}"), "prompt", "prompt log-probabilities");

                var ok = post(client, port, "/v1/completions",
                        "{\"prompt\": \"Once upon a time\", \"max_tokens\": 5, \"logprobs\": 2}");
                assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
                JsonNode choice = JSON.readTree(ok.body()).get("choices").get(0);
                assertThat(choice.get("logprobs").get("tokens")).hasSize(5);
                var echo = post(client, port, "/v1/completions",
                        "{\"prompt\": \"Once upon a time\", \"max_tokens\": 2, \"echo\": true}");
                assertThat(echo.statusCode()).as(echo.body()).isEqualTo(200);
                assertThat(JSON.readTree(echo.body()).get("choices").get(0).get("text").asText())
                        .startsWith("Once upon a time");
                var chat = post(client, port, "/v1/chat/completions",
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 4}");
                assertThat(chat.statusCode()).as(chat.body()).isEqualTo(200);
                assertThat(engine.active() + engine.queued()).isZero();
            }
        }
    }
}
