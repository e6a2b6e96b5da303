package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.server.InferenceServer;
import aether.llm.server.ServeSettings;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Over 1,000 malformed or hostile bodies (truncated JSON, wrong types, out-of-range and huge numbers, deep nesting,
 * invalid UTF-8, binary junk, multi-megabyte strings), 8 at a time: every answer is a 4xx with OpenAI error JSON, and
 * the server then still serves a normal request with its KV pool empty.
 */
class OpenAiFuzzTest {

    static final long SEED = 20261122L;
    static final String[] VALID = {
        "{\"model\":\"fuzz\",\"prompt\":\"Once upon a time\",\"max_tokens\":4,\"temperature\":0}",
        "{\"prompt\":[1,2,3],\"max_tokens\":4,\"stop\":[\"a\"],\"logit_bias\":{\"5\":1}}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":4,\"stream\":true}",
        "{\"messages\":[{\"role\":\"system\",\"content\":\"x\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                + "\"text\":\"y\"}]}],\"top_p\":0.5,\"seed\":3}"};
    static final String[] NUMERIC_FIELDS = {"max_tokens", "temperature", "top_p", "presence_penalty",
        "frequency_penalty", "seed", "n", "top_k", "min_p"};
    /** Values no field of that kind accepts: for prompt and stop, no strings (and no empty list for stop). */
    static final String[] NOT_TEXT = {"{}", "true", "-1e309", "NaN", "123456789012345678901234567890", "[[[[1]]]]",
        "[true]", "[{}]"};
    static final String[] BAD_VALUES = {"\"text\"", "[]", "{}", "true", "-1e309", "1e309", "NaN", "-Infinity",
        "123456789012345678901234567890", "-99999999999", "3.7e12", "\"\\u0000\"", "[[[[1]]]]"};

    /** One hostile body and where it goes. */
    record Case(String path, byte[] body, String what) {}

    static List<Case> cases(Random r) {
        var out = new ArrayList<Case>();
        for (int i = 0; i < 400; i++) {   // truncated at every kind of position
            String v = VALID[i % VALID.length];
            int cut = r.nextInt(v.length() - 1);
            out.add(new Case(path(v), v.substring(0, cut).getBytes(StandardCharsets.UTF_8), "truncated at " + cut));
        }
        for (int i = 0; i < 300; i++) {   // a numeric field given a value of the wrong type or out of range
            String field = NUMERIC_FIELDS[r.nextInt(NUMERIC_FIELDS.length)];
            String value = BAD_VALUES[r.nextInt(BAD_VALUES.length)];
            if (field.equals("seed") && value.matches("-?\\d{1,11}|3\\.7e12")) {
                value = "\"seed\"";   // every integer is a valid seed
            }
            boolean chat = r.nextBoolean();
            String body = chat ? "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"" + field + "\":" + value + "}"
                    : "{\"prompt\":\"x\",\"" + field + "\":" + value + "}";
            out.add(new Case(chat ? "/v1/chat/completions" : "/v1/completions", bytes(body), field + "=" + value));
        }
        for (int i = 0; i < 150; i++) {   // structure: wrong shapes for messages / prompt
            String[] shapes = {"{\"messages\":" + BAD_VALUES[r.nextInt(BAD_VALUES.length)] + "}",
                "{\"messages\":[" + BAD_VALUES[r.nextInt(BAD_VALUES.length)] + "]}",
                "{\"messages\":[{\"role\":" + BAD_VALUES[r.nextInt(BAD_VALUES.length)] + ",\"content\":\"x\"}]}",
                "{\"prompt\":" + NOT_TEXT[r.nextInt(NOT_TEXT.length)] + "}",
                "{\"prompt\":[1," + BAD_VALUES[r.nextInt(BAD_VALUES.length)] + "]}",
                "{\"prompt\":\"x\",\"stop\":" + NOT_TEXT[r.nextInt(NOT_TEXT.length)] + "}",
                "{\"prompt\":\"x\",\"logit_bias\":{\"" + r.nextInt(100000) + "x\":1}}"};
            String body = shapes[r.nextInt(shapes.length)];
            out.add(new Case(body.contains("messages") ? "/v1/chat/completions" : "/v1/completions", bytes(body),
                    "shape " + body));
        }
        for (int i = 0; i < 60; i++) {   // deep nesting
            int depth = 65 + r.nextInt(5000);
            String body = "{\"prompt\":" + "[".repeat(depth) + "]".repeat(depth) + "}";
            out.add(new Case("/v1/completions", bytes(body), "nesting " + depth));
        }
        for (int i = 0; i < 60; i++) {   // binary junk and invalid UTF-8
            byte[] junk = new byte[1 + r.nextInt(2000)];
            r.nextBytes(junk);
            junk[0] = (byte) (0x80 | r.nextInt(0x40));   // never a valid first byte of JSON
            out.add(new Case(r.nextBoolean() ? "/v1/completions" : "/v1/chat/completions", junk, "junk"));
            byte[] utf = bytes("{\"prompt\":\"ab\u0001\"}");
            utf[utf.length - 4] = (byte) 0xC3;   // a lead byte followed by a quote: invalid UTF-8
            out.add(new Case("/v1/completions", utf, "invalid utf-8"));
        }
        for (int i = 0; i < 4; i++) {   // multi-megabyte strings (the body limit is 1 MiB)
            String big = "{\"prompt\":\"" + "x".repeat(10 << 20) + "\"}";
            out.add(new Case("/v1/completions", bytes(big), "10 MB string"));
        }
        for (int i = 0; i < 40; i++) {   // a whole body of a wrong JSON type
            out.add(new Case("/v1/chat/completions", bytes(BAD_VALUES[r.nextInt(BAD_VALUES.length)]), "not an object"));
        }
        String embedding = "{\"input\":[\"Once upon a time\",\"The cat\"],\"encoding_format\":\"base64\"}";
        for (int i = 0; i < 200; i++) {   // embeddings: truncated, wrong shapes and values of each field
            String bad = BAD_VALUES[r.nextInt(BAD_VALUES.length)];
            String[] shapes = {embedding.substring(0, r.nextInt(embedding.length() - 1)),
                "{\"input\":" + NOT_TEXT[r.nextInt(NOT_TEXT.length)] + "}",
                "{\"input\":[1," + bad + "]}",
                "{\"input\":[[1,2]," + NOT_TEXT[r.nextInt(NOT_TEXT.length)] + "]}",
                "{\"input\":\"x\",\"dimensions\":" + bad + "}",
                "{\"input\":\"x\",\"encoding_format\":" + bad + "}",
                "{\"input\":[\"x\",\"\"]}",
                bad};
            String body = shapes[r.nextInt(shapes.length)];
            out.add(new Case("/v1/embeddings", bytes(body), "embeddings " + body));
        }
        return out;
    }

    static String path(String body) {
        return body.contains("messages") ? "/v1/chat/completions" : "/v1/completions";
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    @Timeout(300)
    void shouldAnswerEveryHostileBodyWith4xxAndStayHealthy() throws Exception {
        var model = SharedData.require("models/stories260K.gguf");
        List<Case> cases = cases(new Random(SEED));
        assertThat(cases.size()).isGreaterThanOrEqualTo(1000);
        try (var server = InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, Set.of(), 4, 16, 0, 256, 4,
                32, 0, 1 << 20, 0, null, "fuzz"))) {
            var client = new ServerClient(server.port(), null);
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                var futures = new ArrayList<Future<HttpResponse<String>>>();
                for (Case c : cases) {
                    futures.add(pool.submit(() -> client.send(client.request(c.path())
                            .header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofByteArray(c.body())).build())));
                }
                for (int i = 0; i < cases.size(); i++) {
                    String about = "case " + i + " (" + cases.get(i).what().substring(0,
                            Math.min(200, cases.get(i).what().length())) + ", seed " + SEED + ")";
                    HttpResponse<String> r;
                    try {
                        r = futures.get(i).get(60, TimeUnit.SECONDS);
                    } catch (java.util.concurrent.ExecutionException e) {
                        throw new AssertionError(about + " got no answer: " + e.getCause(), e);
                    }
                    String what = about + ": " + r.body();
                    assertThat(r.statusCode()).as(what).isBetween(400, 499);
                    JsonNode e = ServerClient.parse(r.body()).get("error");
                    assertThat(e).as(what).isNotNull();
                    assertThat(e.get("message").asText()).as(what).isNotBlank();
                }
            } finally {
                pool.shutdownNow();
            }
            assertThat(client.get("/health").statusCode()).isEqualTo(200);
            assertThat(client.get("/ready").statusCode()).isEqualTo(200);
            JsonNode ok = client.postJson("/v1/completions", VALID[0]);
            assertThat(ok.get("usage").get("completion_tokens").asInt()).isEqualTo(4);
            assertThat(client.activeBlocks()).isZero();
            assertThat(client.get("/metrics").body()).doesNotContain("status=\"5");
        }
    }
}
