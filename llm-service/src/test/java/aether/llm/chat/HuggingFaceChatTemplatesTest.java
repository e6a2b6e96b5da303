package aether.llm.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.gguf.GgufFile;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Well-known Hugging Face chat templates (copies of the {@code chat_template} of each model's
 * {@code tokenizer_config.json}, as test resources), rendered with tools, tool calls and tool results. Expected strings
 * were written from how the templates read and agree with Python Jinja2 in transformers' configuration
 * (trim_blocks, lstrip_blocks, json.dumps tojson).
 */
class HuggingFaceChatTemplatesTest {

    private static final String TOOLS_JSON = """
            [{"type":"function","function":{"name":"get_weather","description":"Get the weather",
              "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]""";

    static String resource(String name) throws IOException {
        try (InputStream in = HuggingFaceChatTemplatesTest.class.getResourceAsStream(name)) {
            assertThat(in).as(name).isNotNull();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    static ChatTemplate template(String resource, String bos, String eos) throws IOException {
        return ChatTemplate.compile(resource, resource(resource), bos, eos);
    }

    static Object json(String text) throws IOException {
        return new ObjectMapper().readValue(text, Object.class);
    }

    static ChatMessage.ToolCall weatherCall(String id) {
        return new ChatMessage.ToolCall(id, "get_weather", Map.of("city", "Paris"));
    }

    @Test
    void shouldRenderLlama31WithTheDefaultDateAndSystemPrompt() throws IOException {
        var t = template("llama-3.1-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>");

        String out = t.render(List.of(ChatMessage.system("You are a helpful assistant"), ChatMessage.user("Hello")), true);

        assertThat(out).isEqualTo("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                + "You are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                + "Hello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    @Test
    void shouldRenderLlama31ToolsInTheFirstUserMessageWithToolCallAndResult() throws IOException {
        var t = template("llama-3.1-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>");
        var messages = List.of(ChatMessage.system("Be brief."), ChatMessage.user("Weather in Paris?"),
                ChatMessage.assistantToolCalls(List.of(weatherCall("call_1"))),
                ChatMessage.tool("call_1", "get_weather", "{\"temp\": 18}"));

        String out = t.render(messages, true, Map.of("tools", json(TOOLS_JSON), "date_string", "22 Nov 2026"));

        assertThat(out).isEqualTo("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                + "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 22 Nov 2026\n\n"
                + "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                + "Given the following functions, please respond with a JSON for a function call with its proper "
                + "arguments that best answers the given prompt.\n\n"
                + "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its "
                + "value}.Do not use variables.\n\n"
                + "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n"
                + "        \"description\": \"Get the weather\",\n        \"parameters\": {\n"
                + "            \"type\": \"object\",\n            \"properties\": {\n                \"city\": {\n"
                + "                    \"type\": \"string\"\n                }\n            },\n"
                + "            \"required\": [\n                \"city\"\n            ]\n        }\n    }\n}\n\n"
                + "Weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
                + "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>"
                // a string is iterable in Jinja, so Llama 3.1 tojson's the tool result: a quoted JSON string
                + "<|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temp\\\": 18}\"<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    @Test
    void shouldRefuseLlama31ParallelToolCalls() throws IOException {
        var t = template("llama-3.1-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>");
        var messages = List.of(ChatMessage.user("Weather in Paris and Rome?"),
                ChatMessage.assistantToolCalls(List.of(weatherCall("a"), weatherCall("b"))));

        assertThatThrownBy(() -> t.render(messages, false))
                .isInstanceOfSatisfying(ChatTemplateException.class, e -> {
                    assertThat(e.raisedByTemplate()).isTrue();
                    assertThat(e.reason()).isEqualTo("This model only supports single tool-calls at once!");
                    assertThat(e.line()).isEqualTo(71);
                });
    }

    @Test
    void shouldTakeLlama32DateFromStrftimeNow() {
        // The date block of meta-llama/Llama-3.2-3B-Instruct's template, verbatim.
        String block = """
                {%- if not date_string is defined %}
                    {%- if strftime_now is defined %}
                        {%- set date_string = strftime_now("%d %b %Y") %}
                    {%- else %}
                        {%- set date_string = "26 Jul 2024" %}
                    {%- endif %}
                {%- endif %}
                {{- "Today Date: " + date_string + "\\n\\n" }}""";
        var t = ChatTemplate.compile(block)
                .withClock(Clock.fixed(Instant.parse("2026-03-05T14:07:09Z"), ZoneOffset.UTC));

        assertThat(t.render(List.of(), true)).isEqualTo("Today Date: 05 Mar 2026\n\n");
        assertThat(t.render(List.of(), true, Map.of("date_string", "01 Jan 2025"))).isEqualTo("Today Date: 01 Jan 2025\n\n");
    }

    @Test
    void shouldRenderQwen25WithToolsToolCallsAndToolResponses() throws IOException {
        var t = template("qwen2.5-instruct.jinja", "", "<|im_end|>");
        var messages = List.of(ChatMessage.user("Weather in Paris?"),
                ChatMessage.assistantToolCalls(List.of(weatherCall("call_1"))),
                ChatMessage.tool("call_1", null, "{\"temp\": 18}"));

        String out = t.render(messages, true, Map.of("tools", json(TOOLS_JSON)));

        assertThat(out).isEqualTo("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                + "assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
                + "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", "
                + "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, "
                + "\"required\": [\"city\"]}}}\n</tools>\n\n"
                + "For each function call, return a json object with function name and arguments within "
                + "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
                + "<args-json-object>}\n</tool_call><|im_end|>\n"
                + "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
                + "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                + "</tool_call><|im_end|>\n"
                + "<|im_start|>user\n<tool_response>\n{\"temp\": 18}\n</tool_response><|im_end|>\n"
                + "<|im_start|>assistant\n");
    }

    @Test
    void shouldRenderQwen25DefaultSystemPromptWithoutTools() throws IOException {
        var t = template("qwen2.5-instruct.jinja", "", "<|im_end|>");

        assertThat(t.render(List.of(ChatMessage.user("Hi")), true)).isEqualTo(
                "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                        + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        assertThat(t.render(List.of(ChatMessage.user("Hi")), false)).isEqualTo(
                "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                        + "<|im_start|>user\nHi<|im_end|>\n");
    }

    @Test
    void shouldDropDeepSeekR1ReasoningFromHistoryAndOpenThinking() throws IOException {
        var t = template("deepseek-r1-distill-qwen.jinja", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
        var messages = List.of(ChatMessage.system("You are helpful."), ChatMessage.user("1+1?"),
                ChatMessage.assistant("<think>\nadd\n</think>\n\n2"), ChatMessage.user("Times 3?"));

        assertThat(t.render(messages, true)).isEqualTo("<｜begin▁of▁sentence｜>You are helpful.<｜User｜>1+1?"
                + "<｜Assistant｜>\n\n2<｜end▁of▁sentence｜><｜User｜>Times 3?<｜Assistant｜><think>\n");
    }

    @Test
    void shouldRenderZephyrKeepingNewlinesAfterExpressions() throws IOException {
        var t = template("zephyr-7b-beta.jinja", "<s>", "</s>");
        var messages = List.of(ChatMessage.system("You are a friendly chatbot."), ChatMessage.user("Hi"));

        assertThat(t.render(messages, true)).isEqualTo("<|system|>\nYou are a friendly chatbot.</s>\n<|user|>\nHi</s>\n<|assistant|>\n");
        assertThat(t.render(messages, false)).isEqualTo("<|system|>\nYou are a friendly chatbot.</s>\n<|user|>\nHi</s>\n");
    }

    @Test
    void shouldRenderLlama2WithSystemInTheFirstInstruction() throws IOException {
        var t = template("llama-2-chat.jinja", "<s>", "</s>");
        var messages = List.of(ChatMessage.system("S"), ChatMessage.user("Hi"), ChatMessage.assistant("Hello!"),
                ChatMessage.user("How?"));

        assertThat(t.render(messages, true)).isEqualTo("<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] How? [/INST]");
    }

    @Test
    void shouldRaiseLlama2ErrorForRolesThatDoNotAlternate() throws IOException {
        var t = template("llama-2-chat.jinja", "<s>", "</s>");
        var messages = List.of(ChatMessage.user("Hi"), ChatMessage.user("Hi again"));

        assertThatThrownBy(() -> t.render(messages, true))
                .isInstanceOfSatisfying(ChatTemplateException.class, e -> {
                    assertThat(e.raisedByTemplate()).isTrue();
                    assertThat(e.reason()).isEqualTo("Conversation roles must alternate user/assistant/user/assistant/...");
                    assertThat(e.templateName()).isEqualTo("llama-2-chat.jinja");
                    assertThat(e.line()).isEqualTo(1);
                    assertThat(e.getMessage()).startsWith("chat template 'llama-2-chat.jinja', line 1")
                            .doesNotContain("hubspot").doesNotContain("Exception");
                });
    }

    @Test
    void shouldRenderGemma2AndRefuseItsSystemRole() throws IOException {
        var t = template("gemma-2-it.jinja", "<bos>", "<eos>");

        assertThat(t.render(List.of(ChatMessage.user("Hi"), ChatMessage.assistant("Hello"), ChatMessage.user("Bye")), true))
                .isEqualTo("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
                        + "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
        assertThatThrownBy(() -> t.render(List.of(ChatMessage.system("S"), ChatMessage.user("Hi")), true))
                .isInstanceOf(ChatTemplateException.class).hasMessageContaining("System role not supported");
    }

    @Test
    void shouldRenderMistralV01() throws IOException {
        var t = template("mistral-7b-instruct-v0.1.jinja", "<s>", "</s>");

        assertThat(t.render(List.of(ChatMessage.user("Hi"), ChatMessage.assistant("Hello"), ChatMessage.user("Bye")), true))
                .isEqualTo("<s>[INST] Hi [/INST]Hello</s> [INST] Bye [/INST]");
    }

    @Test
    void shouldRenderMistralV3ToolsToolCallsAndResults() throws IOException {
        // Mistral-Large-Instruct-2407 ("v3") from llama.cpp's vectors: loop filters (for key, val in items() if ...),
        // `val is string`, slicing a tojson string, selectattr and dict equality.
        String source = LlamaCppChatTemplateVectorsTest.cases()
                .map(a -> (com.fasterxml.jackson.databind.JsonNode) ((org.junit.jupiter.api.Named<?>) a.get()[0]).getPayload())
                .filter(c -> c.get("name").asText().startsWith("Mistral-Large-Instruct-2407"))
                .findFirst().orElseThrow().get("template").asText();
        var t = ChatTemplate.compile("mistral-v3", source, "", "</s>");
        Object tools = json("""
                [{"type":"function","function":{"name":"get_weather","description":"Get the weather",
                  "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},
                  "return":{"type":"string"}}}]""");
        var messages = List.of(ChatMessage.user("Weather in Paris?"),
                ChatMessage.assistantToolCalls(List.of(weatherCall("abcdef123"))),
                ChatMessage.tool("abcdef123", null, "18C"), ChatMessage.assistant("It is 18C."), ChatMessage.user("Thanks"));

        String out = t.render(messages, true, Map.of("tools", tools));

        assertThat(out).isEqualTo("[INST] Weather in Paris?[/INST][TOOL_CALLS] [{\"name\": \"get_weather\", "
                + "\"arguments\": {\"city\": \"Paris\"}, \"id\": \"abcdef123\"}]</s>[TOOL_RESULTS] {\"content\": 18C, "
                + "\"call_id\": \"abcdef123\"}[/TOOL_RESULTS] It is 18C.</s>[AVAILABLE_TOOLS] [{\"type\": \"function\", "
                + "\"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", \"parameters\": "
                + "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}]"
                + "[/AVAILABLE_TOOLS][INST] Thanks[/INST]");
    }

    @Test
    void shouldRefuseMistralV3ToolCallIdsOfTheWrongLength() throws IOException {
        String source = LlamaCppChatTemplateVectorsTest.cases()
                .map(a -> (com.fasterxml.jackson.databind.JsonNode) ((org.junit.jupiter.api.Named<?>) a.get()[0]).getPayload())
                .filter(c -> c.get("name").asText().startsWith("Mistral-Large-Instruct-2407"))
                .findFirst().orElseThrow().get("template").asText();
        var t = ChatTemplate.compile("mistral-v3", source, "", "</s>");
        var messages = List.of(ChatMessage.user("Weather?"), ChatMessage.assistantToolCalls(List.of(weatherCall("x1"))));

        assertThatThrownBy(() -> t.render(messages, true))
                .isInstanceOfSatisfying(ChatTemplateException.class, e -> {
                    assertThat(e.reason()).isEqualTo("Tool call IDs should be alphanumeric strings with length 9!");
                    assertThat(e.line()).isEqualTo(62);
                });
    }

    @Test
    void shouldRenderMistralSmall31DefaultSystemPromptWithTodaysDate() throws IOException {
        // Its default system prompt is one string literal continued over lines with backslash-newline.
        var t = template("mistral-small-3.1-instruct.jinja", "<s>", "</s>")
                .withClock(Clock.fixed(Instant.parse("2026-03-05T14:07:09Z"), ZoneOffset.UTC));

        assertThat(t.render(List.of(ChatMessage.user("Hi")), true)).isEqualTo(
                "<s>[SYSTEM_PROMPT]You are Mistral Small 3, a Large Language Model (LLM) created by Mistral AI, a "
                + "French startup headquartered in Paris.Your knowledge base was last updated on 2023-10-01. The "
                + "current date is 2026-03-05.When you're not sure about some information, you say that you don't have "
                + "the information and don't make up anything.If the user's question is not clear, ambiguous, or does "
                + "not provide enough context for you to accurately answer the question, you do not try to answer it "
                + "right away and you rather ask the user to clarify their request (e.g. \"What are some good "
                + "restaurants around me?\" => \"Where are you?\" or \"When is the next flight to Tokyo\" => \"Where do you "
                + "travel from?\")[/SYSTEM_PROMPT][INST]Hi[/INST]");
    }

    @Test
    void shouldRenderMistralSmall31ToolsAfterFilteringToolTurnsWithListConcatenation() throws IOException {
        var t = template("mistral-small-3.1-instruct.jinja", "<s>", "</s>");
        var messages = List.of(ChatMessage.system("Be brief."), ChatMessage.user("Weather in Paris?"),
                ChatMessage.assistantToolCalls(List.of(weatherCall("call_abcdef123"))),
                ChatMessage.tool("call_abcdef123", null, "18C"), ChatMessage.assistant("It is 18C."),
                ChatMessage.user("Thanks"));

        assertThat(t.render(messages, true, Map.of("tools", json(TOOLS_JSON)))).isEqualTo(
                "<s>[SYSTEM_PROMPT]You are a helpful assistant that can call tools. If you call one or more tools, "
                + "format them in a single JSON array or objects, where each object is a tool call, not as separate "
                + "objects outside of an array or multiple arrays. Use the format [{\"name\": tool call name, "
                + "\"arguments\": tool call arguments}, additional tool calls] if you call more than one tool. If you "
                + "call tools, do not attempt to interpret them or otherwise provide a response until you receive a "
                + "tool call result that you can interpret for the user.Be brief.[/SYSTEM_PROMPT][INST]Weather in "
                + "Paris?[/INST][TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": "
                + "\"abcdef123\"}]</s>[TOOL_RESULTS] {\"content\": 18C, \"call_id\": \"abcdef123\"}[/TOOL_RESULTS]It is "
                + "18C.</s>[AVAILABLE_TOOLS] [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "
                + "\"Get the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, "
                + "\"required\": [\"city\"]}}}][/AVAILABLE_TOOLS][INST]Thanks[/INST]");
    }

    @Test
    void shouldRenderThePhi3TemplateOfARealGguf() throws IOException {
        var path = SharedData.require("models/vocab/ggml-vocab-phi-3.gguf");
        try (var file = GgufFile.open(path)) {
            var metadata = file.metadata();
            var t = ChatTemplate.fromGguf(metadata).orElseThrow();

            assertThat(t.bosToken()).isEqualTo("<s>");
            assertThat(t.eosToken()).isEqualTo("<|endoftext|>");
            assertThat(ChatTemplate.templateNames(metadata)).containsExactly("default");
            // Phi-3-mini's template ignores system turns (llama.cpp merges them into the first user turn).
            String out = t.render(List.of(ChatMessage.system("You are a helpful assistant"), ChatMessage.user("Hello"),
                    ChatMessage.assistant("Hi there"), ChatMessage.user("Who are you")), true);
            assertThat(out).isEqualTo("<s><|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
                    + "<|user|>\nWho are you<|end|>\n<|assistant|>\n");
        }
    }

    @Test
    void shouldFindNoTemplateInAVocabularyWithout() throws IOException {
        var path = SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
        try (var file = GgufFile.open(path)) {
            assertThat(ChatTemplate.fromGguf(file.metadata())).isEmpty();
            assertThat(ChatTemplate.templateNames(file.metadata())).isEmpty();
        }
    }
}
