package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.chat.ChatMessage;
import aether.llm.chat.ChatTemplate;
import aether.llm.gguf.GgufFile;
import aether.llm.server.InferenceServer;
import aether.llm.server.ServeSettings;
import aether.llm.tokenizer.Tokenizer;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tools}/{@code tool_choice} over HTTP: stories260K served with Qwen2.5's real chat template (Hermes
 * {@code <tool_call>} format) and Llama 3.1's ({@code {"name", "parameters"}}), as {@code --chat-template} files. The
 * tool definitions must reach the prompt through the template, and a forced call must come back in OpenAI's
 * {@code tool_calls} shape with arguments that validate against the function's parameters.
 */
class ToolCallServeTest {

    static final String TOOLS = """
            [{"type":"function","function":{"name":"get_weather","description":"Weather of a city",
              "parameters":{"type":"object","properties":{"city":{"type":"string","minLength":1,"maxLength":30},
              "unit":{"enum":["celsius","fahrenheit"]}},"required":["city","unit"],"additionalProperties":false}}},
             {"type":"function","function":{"name":"get_time","parameters":{"type":"object",
              "properties":{"zone":{"type":"string"},"hour24":{"type":"boolean"}},"required":["zone"]}}}]""";
    static final String USER = "[{\"role\":\"user\",\"content\":\"What is the weather in Paris?\"}]";
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;
    static Tokenizer tokenizer;
    static InferenceServer qwen;
    static InferenceServer llama;
    static InferenceServer plain;

    static Path resource(String name) throws Exception {
        Path p = dir.resolve(name);
        try (InputStream in = ToolCallServeTest.class.getResourceAsStream("/serve/" + name)) {
            Files.write(p, in.readAllBytes());
        }
        return p;
    }

    static ServeSettings settings(Path model, String template) {
        return new ServeSettings(model, "127.0.0.1", 0, Set.of(), 4, 16, 0, 2048, 4, 64, 0, 256 * 1024, 0, template,
                "stories");
    }

    @BeforeAll
    static void start() throws Exception {
        Path model = SharedData.require("models/stories260K.gguf");
        try (GgufFile f = GgufFile.open(model)) {
            tokenizer = Tokenizer.fromGguf(f.metadata());
        }
        qwen = InferenceServer.start(settings(model, resource("qwen2.5-instruct.jinja").toString()));
        llama = InferenceServer.start(settings(model, resource("llama-3.1-instruct.jinja").toString()));
        plain = InferenceServer.start(settings(model, null));
    }

    @AfterAll
    static void stop() {
        for (InferenceServer s : new InferenceServer[] {qwen, llama, plain}) {
            if (s != null) {
                s.close();
            }
        }
    }

    static String body(String messages, String choice, long seed, String extra) {
        return "{\"messages\":" + messages + ",\"tools\":" + TOOLS + (choice == null ? "" : ",\"tool_choice\":" + choice)
                + (extra.contains("max_tokens") ? "" : ",\"max_tokens\":300") + ",\"temperature\":1.0,\"seed\":" + seed
                + extra + "}";
    }

    static JsonNode parameters(String name) throws Exception {
        for (JsonNode t : JSON.readTree(TOOLS)) {
            if (t.get("function").get("name").asText().equals(name)) {
                return t.get("function").get("parameters");
            }
        }
        throw new AssertionError("no tool " + name);
    }

    /** A tool call in OpenAI's shape whose arguments validate against the function's parameters. */
    static String assertCall(JsonNode call) throws Exception {
        assertThat(call.get("id").asText()).startsWith("call_");
        assertThat(call.get("type").asText()).isEqualTo("function");
        String name = call.get("function").get("name").asText();
        assertThat(name).isIn("get_weather", "get_time");
        JsonNode args = JSON.readTree(call.get("function").get("arguments").asText());
        var validator = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12).getSchema(parameters(name));
        assertThat(validator.validate(args)).as("%s(%s)", name, args).isEmpty();
        return name;
    }

    /** The prompt the server must have built: the template rendered with the tools, tokenized as the server does. */
    static int[] expectedPrompt(Path templateFile, List<ChatMessage> messages) throws Exception {
        ChatTemplate t = ChatTemplate.compile("t", Files.readString(templateFile),
                tokenizer.tokenText(tokenizer.specialTokens().bos()), tokenizer.tokenText(tokenizer.specialTokens().eos()));
        String rendered = t.render(messages, true, Map.of("tools", JSON.readValue(TOOLS, List.class)));
        assertThat(rendered).contains("\"name\": \"get_weather\"").contains("\"description\": \"Weather of a city\"")
                .contains("\"get_time\"").contains("fahrenheit");
        boolean bosInText = rendered.startsWith(t.bosToken());
        return tokenizer.encode(rendered, !bosInText, true);
    }

    @Test
    @Timeout(240)
    void shouldRenderTheToolsAndForceARequiredCallInTheHermesFormat() throws Exception {
        var client = new ServerClient(qwen.port(), null);
        int[] prompt = expectedPrompt(dir.resolve("qwen2.5-instruct.jinja"),
                List.of(ChatMessage.user("What is the weather in Paris?")));
        var names = new java.util.HashSet<String>();
        for (long seed = 0; seed < 8; seed++) {
            JsonNode r = client.postJson("/v1/chat/completions", body(USER, "\"required\"", seed, ""));
            assertThat(r.get("usage").get("prompt_tokens").asInt()).as("the tools are in the prompt")
                    .isEqualTo(prompt.length);
            JsonNode choice = r.get("choices").get(0);
            assertThat(choice.get("finish_reason").asText()).isEqualTo("tool_calls");
            assertThat(choice.get("message").get("content").isNull()).isTrue();
            assertThat(choice.get("message").get("tool_calls")).hasSize(1);
            names.add(assertCall(choice.get("message").get("tool_calls").get(0)));
        }
        assertThat(names).as("'required' lets the model pick either function").isNotEmpty();
        for (long seed = 0; seed < 4; seed++) {
            JsonNode r = client.postJson("/v1/chat/completions", body(USER,
                    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}", seed, ""));
            JsonNode call = r.get("choices").get(0).get("message").get("tool_calls").get(0);
            assertThat(assertCall(call)).isEqualTo("get_time");
        }
    }

    @Test
    @Timeout(120)
    void shouldStreamTheCallInOneDelta() throws Exception {
        var client = new ServerClient(qwen.port(), null);
        ServerClient.Stream s = client.stream("/v1/chat/completions", body(USER,
                "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}", 3, ",\"stream\":true"));
        assertThat(s.status()).isEqualTo(200);
        List<JsonNode> chunks = s.chunks();
        assertThat(chunks.getFirst().get("choices").get(0).get("delta").get("role").asText()).isEqualTo("assistant");
        JsonNode delta = chunks.get(1).get("choices").get(0).get("delta");
        assertThat(delta.has("content")).isFalse();
        JsonNode call = delta.get("tool_calls").get(0);
        assertThat(call.get("index").asInt()).isZero();
        assertThat(assertCall(call)).isEqualTo("get_weather");
        assertThat(chunks.getLast().get("choices").get(0).get("finish_reason").asText()).isEqualTo("tool_calls");
        assertThat(s.data().getLast()).isEqualTo("[DONE]");
    }

    @Test
    @Timeout(120)
    void shouldForceTheLlamaJsonFormatAndAcceptToolTurns() throws Exception {
        var client = new ServerClient(llama.port(), null);
        JsonNode r = client.postJson("/v1/chat/completions", body(USER, "\"required\"", 5, ""));
        JsonNode choice = r.get("choices").get(0);
        assertThat(choice.get("finish_reason").asText()).isEqualTo("tool_calls");
        assertCall(choice.get("message").get("tool_calls").get(0));
        // a conversation that already called a tool and got its result renders through the template
        String turns = "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},{\"role\":\"assistant\",\"content\":null,"
                + "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                + "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"unit\\\":\\\"celsius\\\"}\"}}]},"
                + "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"temp\\\":18}\"}]";
        for (InferenceServer server : new InferenceServer[] {qwen, llama}) {
            String template = server == qwen ? "qwen2.5-instruct.jinja" : "llama-3.1-instruct.jinja";
            JsonNode answer = new ServerClient(server.port(), null).postJson("/v1/chat/completions",
                    body(turns, "\"none\"", 1, ",\"max_tokens\":5"));
            int[] expected = expectedPrompt(dir.resolve(template), List.of(ChatMessage.user("Weather in Paris?"),
                    ChatMessage.assistantToolCalls(List.of(new ChatMessage.ToolCall("call_1", "get_weather",
                            Map.of("city", "Paris", "unit", "celsius")))),
                    ChatMessage.tool("call_1", null, "{\"temp\":18}")));
            assertThat(answer.get("usage").get("prompt_tokens").asInt()).as(template).isEqualTo(expected.length);
            assertThat(answer.get("choices").get(0).get("message").has("tool_calls")).isFalse();
        }
    }

    @Test
    @Timeout(60)
    void shouldRefuseToolsTheTemplateCannotRenderAndBadToolFields() {
        HttpResponse<String> r = new ServerClient(plain.port(), null).post("/v1/chat/completions",
                body(USER, null, 1, ""));
        assertThat(r.statusCode()).isEqualTo(400);
        JsonNode error = ServerClient.parse(r.body()).get("error");
        assertThat(error.get("param").asText()).isEqualTo("tools");
        assertThat(error.get("message").asText()).contains("does not support tools");
        var client = new ServerClient(qwen.port(), null);
        record Bad(String body, String param) {}
        for (Bad b : List.of(
                new Bad("{\"messages\":" + USER + ",\"tool_choice\":\"required\"}", "tool_choice"),
                new Bad(body(USER, "{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}", 1, ""),
                        "tool_choice.function.name"),
                new Bad(body(USER, "\"sometimes\"", 1, ""), "tool_choice"),
                new Bad("{\"messages\":" + USER + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
                        + "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"not\":{}}}}}}]}",
                        "tools[0].function.parameters"),
                new Bad("{\"messages\":" + USER + ",\"tools\":[{\"type\":\"retrieval\"}]}", "tools[0].type"),
                new Bad("{\"messages\":" + USER + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]}",
                        "tools[0].function.name"),
                new Bad(body(USER, "\"required\"", 1, ",\"response_format\":{\"type\":\"json_object\"}"),
                        "response_format"))) {
            HttpResponse<String> resp = client.post("/v1/chat/completions", b.body());
            assertThat(resp.statusCode()).as(b.body() + " -> " + resp.body()).isEqualTo(400);
            assertThat(ServerClient.parse(resp.body()).get("error").get("param").asText()).isEqualTo(b.param());
        }
        assertThat(ServerClient.parse(client.post("/v1/chat/completions", "{\"messages\":" + USER + ",\"tools\":["
                + "{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                + "\"properties\":{\"a\":{\"not\":{}}}}}}]}").body()).get("error").get("message").asText())
                .contains("'not'").contains("#/properties/a/not");
    }

    @Test
    @Timeout(120)
    void shouldAnswerWithTextWhenTheModelWritesNoCallUnderAuto() {
        JsonNode r = new ServerClient(qwen.port(), null).postJson("/v1/chat/completions",
                body(USER, "\"auto\"", 2, ",\"max_tokens\":12"));
        JsonNode choice = r.get("choices").get(0);
        assertThat(choice.get("finish_reason").asText()).isIn("stop", "length");
        assertThat(choice.get("message").get("content").isTextual()).isTrue();
        assertThat(choice.get("message").has("tool_calls")).isFalse();
    }
}
