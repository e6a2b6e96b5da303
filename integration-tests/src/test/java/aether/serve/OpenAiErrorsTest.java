package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.server.InferenceServer;
import aether.llm.server.ServeSettings;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.InputStream;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Refusals over real HTTP: OpenAI error JSON with the right status, the field named, and the server unharmed. */
class OpenAiErrorsTest {

    static final String KEY_A = "key-a";
    static final String KEY_B = "key-b";

    /** Two keys, one sequence slot and no queue, 4 requests per minute per key, 8 KiB bodies, 64-token prompts. */
    static InferenceServer server;
    static ServerClient a;
    static ServerClient b;

    @BeforeAll
    static void start(@TempDir Path dir) throws Exception {
        Path keys = dir.resolve("keys.txt");
        Files.writeString(keys, "# test keys\n" + KEY_A + "\n\n" + KEY_B + "\n");
        Path model = SharedData.require("models/stories260K.gguf");
        server = InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, ServeSettings.keys(null,
                keys.toString()), 1, 0, 0, 512, 1, 32, 0, 8 * 1024, 64, null, "tiny"));
        a = new ServerClient(server.port(), KEY_A);
        b = new ServerClient(server.port(), KEY_B);
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    static JsonNode error(HttpResponse<String> r, int status) {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(status);
        assertThat(r.headers().firstValue("Content-Type").orElse("")).startsWith("application/json");
        JsonNode e = ServerClient.parse(r.body()).get("error");
        assertThat(e).as(r.body()).isNotNull();
        assertThat(e.get("message").asText()).isNotBlank();
        assertThat(e.has("type") && e.has("param") && e.has("code")).isTrue();
        return e;
    }

    @Test
    @Timeout(30)
    void shouldRefuseMissingAndWrongKeysWith401() {
        var none = a.withKey(null);
        error(none.get("/v1/models"), 401);
        error(none.post("/v1/completions", "{\"prompt\":\"x\"}"), 401);
        JsonNode wrong = error(a.withKey("key-c").post("/v1/chat/completions", "{}"), 401);
        assertThat(wrong.get("code").asText()).isEqualTo("invalid_api_key");
        var malformed = none.send(none.request("/v1/models").header("Authorization", "Basic abc").GET().build());
        error(malformed, 401);
        assertThat(none.get("/health").statusCode()).isEqualTo(200);
        assertThat(b.get("/v1/models").statusCode()).isEqualTo(200);
    }

    static Stream<Arguments> badBodies() {
        return Stream.of(
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":\"a\"}", 400, "max_tokens"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":0}", 400, "max_tokens"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1.5}", 400, "max_tokens"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"temperature\":3}", 400, "temperature"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"temperature\":\"hot\"}", 400, "temperature"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"top_p\":1.5}", 400, "top_p"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"presence_penalty\":-2.5}", 400,
                        "presence_penalty"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"n\":17}", 400, "n"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"best_of\":3}", 400, "best_of"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"suffix\":\"end\"}", 400, "suffix"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"logprobs\":9}", 400, "logprobs"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"frobnicate\":1}", 400, "frobnicate"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400,
                        "stop"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"stop\":[\"a\",7]}", 400, "stop[1]"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"logit_bias\":{\"abc\":1}}", 400,
                        "logit_bias.abc"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"logit_bias\":{\"5\":200}}", 400, "logit_bias.5"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"logit_bias\":{\"99999\":1}}", 400,
                        "logit_bias.99999"),
                Arguments.of("/v1/completions", "{\"prompt\":[1,2,99999]}", 400, "prompt[2]"),
                Arguments.of("/v1/completions", "{\"prompt\":[[1,2],[3,\"x\"]]}", 400, "prompt[1][1]"),
                Arguments.of("/v1/completions", "{\"prompt\":7}", 400, "prompt"),
                Arguments.of("/v1/completions", "{\"prompt\":[]}", 400, "prompt"),
                Arguments.of("/v1/completions", "{}", 400, "prompt"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"model\":\"gpt-4\"}", 404, "model"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":600}", 400, "max_tokens"),
                Arguments.of("/v1/completions", "{\"prompt\":" + "\"word \"".repeat(1).replace("word ",
                        "word ".repeat(200)) + "}", 400, "prompt"),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"stream\":false,\"stream_options\":{}}", 400,
                        "stream_options"),
                Arguments.of("/v1/chat/completions", "{}", 400, "messages"),
                Arguments.of("/v1/chat/completions", "{\"messages\":[]}", 400, "messages"),
                Arguments.of("/v1/chat/completions", "{\"messages\":\"hi\"}", 400, "messages"),
                Arguments.of("/v1/chat/completions", "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400,
                        "messages[0].role"),
                Arguments.of("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\"}]}", 400,
                        "messages[0].content"),
                Arguments.of("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                        + "{\"role\":\"user\",\"content\":5}]}", 400, "messages[1].content"),
                Arguments.of("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                        + "\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}", 400, "messages[0].content[0].type"),
                Arguments.of("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                        + "\"top_logprobs\":3}", 400, "top_logprobs"),
                Arguments.of("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                        + "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", 400, "tools"),
                Arguments.of("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                        + "\"response_format\":{\"type\":\"json_schema\"}}", 400, "response_format.json_schema"),
                Arguments.of("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                        + "\"response_format\":{\"type\":\"yaml\"}}", 400, "response_format.type"),
                Arguments.of("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                        + "\"max_completion_tokens\":-1}", 400, "max_completion_tokens"),
                Arguments.of("/v1/chat/completions", "[1,2]", 400, null),
                Arguments.of("/v1/chat/completions", "{\"messages\":[}", 400, null),
                Arguments.of("/v1/chat/completions", "{\"messages\":1} trailing", 400, null),
                Arguments.of("/v1/chat/completions", "{\"a\":1,\"a\":2}", 400, null),
                Arguments.of("/v1/chat/completions", "", 400, null),
                Arguments.of("/v1/chat/completions", "[".repeat(500) + "]".repeat(500), 400, null),
                Arguments.of("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1" + "0".repeat(400) + "}", 400,
                        null));
    }

    @ParameterizedTest
    @MethodSource("badBodies")
    @Timeout(30)
    void shouldRefuseABadBodyNamingTheField(String path, String body, int status, String param) {
        JsonNode e = error(b.post(path, body), status);
        if (param == null) {
            assertThat(e.get("param").isNull()).as(e.toString()).isTrue();
        } else {
            assertThat(e.get("param").asText()).as(e.toString()).isEqualTo(param);
        }
    }

    @Test
    @Timeout(30)
    void shouldRefuseABodyOverTheLimitWith413() {
        String big = "{\"prompt\":\"" + "a".repeat(20_000) + "\"}";
        JsonNode e = error(b.post("/v1/completions", big), 413);
        assertThat(e.get("message").asText()).contains("8192");
        // megabytes: the server reads and drops the rest, so the 413 arrives while the client is still sending
        String huge = "{\"prompt\":\"" + "a".repeat(3 << 20) + "\"}";
        for (int i = 0; i < 3; i++) {
            error(b.post("/v1/completions", huge), 413);
        }
        // chunked (no Content-Length): the limit holds while reading
        var chunked = b.send(b.request("/v1/completions").header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(
                        huge.getBytes(java.nio.charset.StandardCharsets.UTF_8)))).build());
        error(chunked, 413);
        assertThat(b.get("/health").statusCode()).isEqualTo(200);
    }

    @Test
    @Timeout(60)
    void shouldAnswer429WithRetryAfterWhenTheSlotAndQueueAreFull() throws Exception {
        HttpResponse<InputStream> running = a.http.send(a.request("/v1/completions")
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Once\",\"max_tokens\":400,"
                        + "\"ignore_eos\":true,\"temperature\":0,\"stream\":true}")).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        try (InputStream in = running.body()) {
            assertThat(in.read()).isNotNegative();   // the first event: the request holds the only slot
            HttpResponse<String> refused = a.post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}");
            JsonNode e = error(refused, 429);
            assertThat(e.get("code").asText()).isEqualTo("server_overloaded");
            assertThat(refused.headers().firstValue("Retry-After")).isPresent();
        }
    }

    @Test
    @Timeout(60)
    void shouldRateLimitEachKeyOnItsOwn() throws Exception {
        var c = new ServerClient(server.port(), null);
        Path model = SharedData.require("models/stories260K.gguf");
        try (var limited = InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, Set.of("k1", "k2"), 2, 4,
                3, 256, 2, 32, 0, 8 * 1024, 64, null, null))) {
            var k1 = new ServerClient(limited.port(), "k1");
            var k2 = new ServerClient(limited.port(), "k2");
            String body = "{\"prompt\":\"x\",\"max_tokens\":1}";
            for (int i = 0; i < 3; i++) {
                assertThat(k1.post("/v1/completions", body).statusCode()).isEqualTo(200);
            }
            HttpResponse<String> limitedResponse = k1.post("/v1/completions", body);
            JsonNode e = error(limitedResponse, 429);
            assertThat(e.get("code").asText()).isEqualTo("rate_limit_exceeded");
            assertThat(Long.parseLong(limitedResponse.headers().firstValue("Retry-After").orElseThrow()))
                    .isBetween(1L, 20L);
            assertThat(k2.post("/v1/completions", body).statusCode()).isEqualTo(200);
        }
        assertThat(c.get("/health").statusCode()).isEqualTo(200);
    }

    @Test
    @Timeout(30)
    void shouldAnswerUnknownPathsAndMethodsWithJsonErrors() {
        error(b.get("/v1/nothing"), 404);
        error(b.get("/v1/completions"), 405);
        error(b.post("/v1/models", "{}"), 405);
    }
}
