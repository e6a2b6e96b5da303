package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.server.InferenceServer;
import aether.llm.server.ServeSettings;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code response_format: json_schema} and {@code n} over HTTP on the real stories260K model, which has never seen
 * JSON: the constraint alone makes every output parse and validate. Validated with an independent validator
 * (networknt, draft 2020-12) and a strict parser (duplicate keys and trailing text refused).
 */
class StructuredOutputServeTest {

    static final ObjectMapper STRICT = JsonMapper.builder().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();
    static final SchemaRegistry REGISTRY = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);

    static final List<String> SCHEMAS = List.of(
            """
            {"type":"object","properties":{"name":{"type":"string","minLength":1,"maxLength":20},
             "age":{"type":"integer","minimum":0,"maximum":120},"pet":{"enum":["cat","dog",null]},
             "tags":{"type":"array","items":{"type":"string","maxLength":8},"maxItems":3}},
             "required":["name","age","pet"],"additionalProperties":false}""",
            """
            {"type":"array","prefixItems":[{"type":"boolean"},{"type":["number","null"]}],
             "items":{"type":"object","properties":{"k":{"const":"v"}},"required":["k"]},"minItems":2,"maxItems":4}""",
            """
            {"$defs":{"step":{"type":"object","properties":{"text":{"type":"string","maxLength":12},
              "next":{"anyOf":[{"$ref":"#/$defs/step"},{"type":"null"}]}},"required":["text","next"],
              "additionalProperties":false}},"type":"object","properties":{"story":{"$ref":"#/$defs/step"}},
             "required":["story"],"additionalProperties":false}""",
            """
            {"anyOf":[{"type":"string","minLength":3,"maxLength":10},{"type":"integer","minimum":-50,"maximum":-10}]}""");

    static InferenceServer server;
    static ServerClient client;

    @BeforeAll
    static void start() {
        Path model = SharedData.require("models/stories260K.gguf");
        server = InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, Set.of(), 8, 64, 0, 1024, 8, 32, 0,
                256 * 1024, 0, null, null));
        client = new ServerClient(server.port(), null);
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    static String body(int schema, long seed, double temperature, int maxTokens, String extra) {
        return "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about a cat\"}],\"max_tokens\":" + maxTokens
                + ",\"temperature\":" + temperature + ",\"seed\":" + seed + ",\"response_format\":{\"type\":"
                + "\"json_schema\",\"json_schema\":{\"name\":\"s" + schema + "\",\"strict\":true,\"schema\":"
                + SCHEMAS.get(schema) + "}}" + extra + "}";
    }

    static void assertValid(int schema, String content) throws Exception {
        JsonNode value = STRICT.readTree(content);
        Schema validator = REGISTRY.getSchema(STRICT.readTree(SCHEMAS.get(schema)));
        assertThat(validator.validate(value)).as("schema %d: %s", schema, content).isEmpty();
    }

    @Test
    @Timeout(300)
    void shouldAnswerEverySeedAndTemperatureWithAValidDocument() throws Exception {
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        try {
            record Case(int schema, long seed, double temperature) {}
            var cases = new ArrayList<Case>();
            double[] temperatures = {0, 0.7, 1.0, 1.5, 2.0};
            for (int schema = 0; schema < SCHEMAS.size(); schema++) {
                for (int i = 0; i < 10; i++) {
                    cases.add(new Case(schema, 1000L * schema + i, temperatures[i % temperatures.length]));
                }
            }
            var futures = new ArrayList<Future<JsonNode>>();
            for (Case c : cases) {
                futures.add(pool.submit(() -> client.postJson("/v1/chat/completions",
                        body(c.schema(), c.seed(), c.temperature(), 400, ""))));
            }
            var distinct = new java.util.HashSet<String>();
            for (int i = 0; i < cases.size(); i++) {
                JsonNode r = futures.get(i).get(240, TimeUnit.SECONDS);
                JsonNode choice = r.get("choices").get(0);
                String content = choice.get("message").get("content").asText();
                assertThat(choice.get("finish_reason").asText()).as(content).isEqualTo("stop");
                assertValid(cases.get(i).schema(), content);
                distinct.add(content);
            }
            assertThat(distinct).as("sampling still varies the documents").hasSizeGreaterThan(cases.size() / 2);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    @Timeout(120)
    void shouldStreamAValidDocumentEqualToTheWholeOne() throws Exception {
        String whole = client.postJson("/v1/chat/completions", body(2, 42, 1.0, 300, ""))
                .get("choices").get(0).get("message").get("content").asText();
        assertValid(2, whole);
        ServerClient.Stream s = client.stream("/v1/chat/completions", body(2, 42, 1.0, 300, ",\"stream\":true"));
        var text = new StringBuilder();
        for (JsonNode c : s.chunks()) {
            JsonNode delta = c.get("choices").get(0).get("delta");
            if (delta.has("content")) {
                text.append(delta.get("content").asText());
            }
        }
        assertThat(text.toString()).isEqualTo(whole);
    }

    @Test
    @Timeout(120)
    void shouldCloseTheDocumentWithinATightTokenBudget() throws Exception {
        // the shortest document of schema 0 is {"name":"a","age":0,"pet":null} (32 bytes); byte-fallback tokens
        // let the sampler close it in time
        for (int maxTokens : new int[] {34, 40, 60}) {
            for (long seed = 0; seed < 3; seed++) {
                JsonNode choice = client.postJson("/v1/chat/completions", body(0, seed, 1.0, maxTokens, ""))
                        .get("choices").get(0);
                String content = choice.get("message").get("content").asText();
                assertValid(0, content);
                assertThat(choice.get("finish_reason").asText()).isEqualTo("stop");
            }
        }
        // below the shortest document the output is cut: finish_reason length, incomplete JSON (as OpenAI)
        JsonNode cut = client.postJson("/v1/chat/completions", body(0, 1, 1.0, 10, "")).get("choices").get(0);
        assertThat(cut.get("finish_reason").asText()).isEqualTo("length");
        assertThat(cut.get("message").get("content").asText()).startsWith("{");
    }

    @Test
    @Timeout(60)
    void shouldRefuseUnsupportedSchemasWithA400NamingTheKeywordAndItsPointer() throws Exception {
        HttpResponse<String> r = client.post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":"
                + "\"x\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"z\",\"schema\":"
                + "{\"type\":\"object\",\"properties\":{\"zip\":{\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"}}}}}}");
        assertThat(r.statusCode()).isEqualTo(400);
        JsonNode error = ServerClient.parse(r.body()).get("error");
        assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
        assertThat(error.get("param").asText()).isEqualTo("response_format.json_schema.schema");
        assertThat(error.get("message").asText()).contains("'pattern'").contains("#/properties/zip/pattern");
        for (String schema : List.of("{\"not\":{}}", "{\"if\":{},\"then\":{}}", "{\"$ref\":\"#/$defs/none\"}",
                "{\"type\":\"object\",\"required\":[\"a\"],\"additionalProperties\":false}", "[1]",
                "{\"$ref\":\"#abc\"}", "{\"$ref\":\"#/%zz\"}", "{\"$ref\":\"#\"}", "{\"type\":\"string\",\"minLength\":1e12}",
                "{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#\"}},\"required\":[\"a\"]}",
                "{\"type\":7}", "{\"enum\":[]}", "{\"minimum\":\"x\"}", "{\"anyOf\":[]}",
                "{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}")) {
            HttpResponse<String> bad = client.post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\","
                    + "\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":"
                    + "\"z\",\"schema\":" + schema + "}}}");
            assertThat(bad.statusCode()).as(schema + ": " + bad.body()).isEqualTo(400);
        }
        assertThat(client.post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                + "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{}}}}").statusCode())
                .as("name is required").isEqualTo(400);
    }

    static final String[] KEYWORDS = {"type", "properties", "required", "items", "prefixItems", "enum", "const",
        "anyOf", "oneOf", "allOf", "$ref", "$defs", "minItems", "maxItems", "minLength", "maxLength", "minimum",
        "maximum", "exclusiveMinimum", "additionalProperties", "nullable", "description", "pattern", "not"};

    /** A random schema-like value: mostly keywords with plausible values, sometimes nonsense. */
    static Object randomSchema(java.util.Random r, int depth) {
        if (depth > 3 || r.nextInt(6) == 0) {
            return switch (r.nextInt(6)) {
                case 0 -> true;
                case 1 -> java.util.Map.of();
                case 2 -> java.util.Map.of("type", List.of("string", "integer", "null", "boolean", "array",
                        "object", "number").get(r.nextInt(7)));
                case 3 -> java.util.Map.of("$ref", List.of("#", "#/$defs/a", "#/$defs/b", "#/nope", "#x").get(
                        r.nextInt(5)));
                case 4 -> java.util.Map.of("enum", List.of(1, "a", List.of(), java.util.Map.of("k", 2)));
                default -> r.nextInt(3) == 0 ? "junk" : java.util.Map.of("const", r.nextInt(5));
            };
        }
        var m = new java.util.LinkedHashMap<String, Object>();
        int n = 1 + r.nextInt(4);
        for (int i = 0; i < n; i++) {
            String k = KEYWORDS[r.nextInt(KEYWORDS.length)];
            Object v = switch (k) {
                case "type" -> r.nextBoolean() ? List.of("string", "integer", "null", "object", "array", "number",
                        "boolean", "float").get(r.nextInt(8)) : List.of("string", "null");
                case "properties", "$defs" -> java.util.Map.of("a", randomSchema(r, depth + 1), "b",
                        randomSchema(r, depth + 1));
                case "required" -> r.nextBoolean() ? List.of("a") : List.of("a", "b", "c");
                case "items", "additionalProperties", "not" -> r.nextInt(4) == 0 ? r.nextBoolean()
                        : randomSchema(r, depth + 1);
                case "prefixItems", "anyOf", "oneOf", "allOf" -> {
                    var l = new ArrayList<Object>();
                    for (int j = r.nextInt(3); j >= 0; j--) {
                        l.add(randomSchema(r, depth + 1));
                    }
                    yield l;
                }
                case "enum" -> List.of("x", 3, r.nextInt(9));
                case "const" -> r.nextBoolean() ? "c" : r.nextInt(100);
                case "$ref" -> List.of("#", "#/$defs/a", "#/properties/a", "#/$defs/zz").get(r.nextInt(4));
                case "minimum", "maximum", "exclusiveMinimum" -> r.nextInt(3) == 0 ? 0.5 : r.nextInt(200) - 100;
                case "nullable" -> r.nextBoolean();
                case "description" -> "d";
                case "pattern" -> "^a";
                default -> r.nextInt(3) == 0 ? -1 : r.nextInt(6);
            };
            m.put(k, v);
        }
        return m;
    }

    @Test
    @Timeout(300)
    void shouldAnswerRandomSchemasWithAValidDocumentOrA400() throws Exception {
        var r = new java.util.Random(20261207L);
        int ok = 0;
        int refused = 0;
        int validated = 0;
        for (int i = 0; i < 300; i++) {
            String schema = STRICT.writeValueAsString(randomSchema(r, 0));
            HttpResponse<String> resp = client.post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\","
                    + "\"content\":\"x\"}],\"max_tokens\":120,\"seed\":" + i + ",\"response_format\":{\"type\":"
                    + "\"json_schema\",\"json_schema\":{\"name\":\"r\",\"schema\":" + schema + "}}}");
            assertThat(resp.statusCode()).as(schema + " -> " + resp.body()).isIn(200, 400);
            if (resp.statusCode() == 400) {
                refused++;
                assertThat(ServerClient.parse(resp.body()).get("error").get("param").asText())
                        .startsWith("response_format");
                continue;
            }
            ok++;
            JsonNode choice = ServerClient.parse(resp.body()).get("choices").get(0);
            if (choice.get("finish_reason").asText().equals("stop")) {
                JsonNode value = STRICT.readTree(choice.get("message").get("content").asText());
                Schema validator;
                try {
                    validator = REGISTRY.getSchema(STRICT.readTree(schema));
                } catch (RuntimeException unusable) {
                    continue;   // nonsense in a part the document never reaches (an unreferenced $defs entry)
                }
                assertThat(validator.validate(value)).as("%s: %s", schema, value).isEmpty();
                validated++;
            }
        }
        assertThat(ok).as("many random schemas are servable").isGreaterThan(50);
        assertThat(refused).as("and many are not").isGreaterThan(20);
        assertThat(validated).isGreaterThan(40);
        assertThat(client.get("/health").statusCode()).isEqualTo(200);
    }

    static String nBody(int n, boolean stream) {
        return "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":1.0,\"seed\":5,\"n\":" + n
                + ",\"stream\":" + stream + (stream ? ",\"stream_options\":{\"include_usage\":true}" : "") + "}";
    }

    @Test
    @Timeout(120)
    void shouldAnswerNChoicesWithDerivedSeedsAndExactUsage() {
        JsonNode one = client.postJson("/v1/completions", nBody(1, false));
        JsonNode many = client.postJson("/v1/completions", nBody(4, false));
        JsonNode choices = many.get("choices");
        assertThat(choices).hasSize(4);
        var texts = new ArrayList<String>();
        int completion = 0;
        for (int i = 0; i < 4; i++) {
            assertThat(choices.get(i).get("index").asInt()).isEqualTo(i);
            texts.add(choices.get(i).get("text").asText());
        }
        // choice 0 keeps the request's seed; the others differ
        assertThat(texts.get(0)).isEqualTo(one.get("choices").get(0).get("text").asText());
        assertThat(new java.util.HashSet<>(texts)).hasSizeGreaterThan(1);
        JsonNode again = client.postJson("/v1/completions", nBody(4, false));
        for (int i = 0; i < 4; i++) {
            assertThat(again.get("choices").get(i).get("text").asText()).as("choice %d repeats", i)
                    .isEqualTo(texts.get(i));
        }
        JsonNode usage = many.get("usage");
        assertThat(usage.get("prompt_tokens").asInt()).as("the prompt counts once")
                .isEqualTo(one.get("usage").get("prompt_tokens").asInt());
        assertThat(usage.get("completion_tokens").asInt()).isEqualTo(4 * 24);
        assertThat(usage.get("total_tokens").asInt())
                .isEqualTo(usage.get("prompt_tokens").asInt() + usage.get("completion_tokens").asInt());

        // chat: n choices, each a valid document under json_schema
        JsonNode chat = client.postJson("/v1/chat/completions", body(3, 9, 1.2, 100, ",\"n\":3"));
        assertThat(chat.get("choices")).hasSize(3);
        for (JsonNode c : chat.get("choices")) {
            try {
                assertValid(3, c.get("message").get("content").asText());
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
    }

    @Test
    @Timeout(120)
    void shouldStreamNChoicesEachUnderItsIndex() {
        JsonNode whole = client.postJson("/v1/completions", nBody(3, false));
        ServerClient.Stream s = client.stream("/v1/completions", nBody(3, true));
        assertThat(s.status()).isEqualTo(200);
        var texts = new StringBuilder[] {new StringBuilder(), new StringBuilder(), new StringBuilder()};
        var finished = new boolean[3];
        JsonNode usage = null;
        for (JsonNode c : s.chunks()) {
            if (c.get("choices").isEmpty()) {
                usage = c.get("usage");
                continue;
            }
            JsonNode choice = c.get("choices").get(0);
            int index = choice.get("index").asInt();
            assertThat(finished[index]).as("no chunk of choice %d after its finish", index).isFalse();
            texts[index].append(choice.get("text").asText());
            finished[index] = !choice.get("finish_reason").isNull();
        }
        assertThat(finished).containsOnly(true);
        for (int i = 0; i < 3; i++) {
            assertThat(texts[i].toString()).isEqualTo(whole.get("choices").get(i).get("text").asText());
        }
        assertThat(usage).isEqualTo(whole.get("usage"));
    }

    @Test
    @Timeout(60)
    void shouldRefuseNBeyondTheLimits() {
        for (String n : List.of("17", "9", "0", "-1", "1.5", "\"2\"")) {
            HttpResponse<String> r = client.post("/v1/completions", "{\"prompt\":\"x\",\"n\":" + n + "}");
            assertThat(r.statusCode()).as("n=%s: %s", n, r.body()).isEqualTo(400);
            assertThat(ServerClient.parse(r.body()).get("error").get("param").asText()).isEqualTo("n");
        }
        // 2 prompts x 4 choices = 8 sequences fit --max-concurrency 8; 2 x 5 do not
        assertThat(client.post("/v1/completions", "{\"prompt\":[\"a\",\"b\"],\"n\":4,\"max_tokens\":2}")
                .statusCode()).isEqualTo(200);
        assertThat(client.post("/v1/completions", "{\"prompt\":[\"a\",\"b\"],\"n\":5,\"max_tokens\":2}")
                .statusCode()).isEqualTo(400);
    }
}
