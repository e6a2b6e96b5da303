package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.chat.ChatTemplate;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Reading tool calls back from model output, and the grammar of a forced call, per template format. */
class ToolCallsTest {

    static ToolCalls.Setup setup(ToolCalls.Format format, String choice) {
        SchemaNode params = SchemaGrammarTest.compile("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
                + "\"string\"}},\"required\":[\"city\"],\"additionalProperties\":false}");
        SchemaNode none = SchemaGrammarTest.compile("{\"type\":\"object\"}");
        return new ToolCalls.Setup(List.of(new ToolCalls.Function("get_weather", params),
                new ToolCalls.Function("ping", none)), format, choice, List.of());
    }

    @Test
    void shouldReadHermesCallsAndKeepTheTextAroundThem() {
        var p = ToolCalls.parse("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                + "\"Paris\"}}\n</tool_call>\n<tool_call>{\"name\":\"ping\",\"arguments\":{}}</tool_call>",
                setup(ToolCalls.Format.HERMES, "auto"));
        assertThat(p.content()).isEqualTo("Let me check.");
        assertThat(p.calls()).extracting(ToolCalls.Call::name).containsExactly("get_weather", "ping");
        assertThat(p.calls().getFirst().arguments()).isEqualTo("{\"city\":\"Paris\"}");
        assertThat(p.calls().getFirst().id()).startsWith("call_");
        // cut before the closing tag (max_tokens): still a call when its JSON is whole
        assertThat(ToolCalls.parse("<tool_call>\n{\"name\":\"ping\",\"arguments\":{}}",
                setup(ToolCalls.Format.HERMES, "auto")).calls()).hasSize(1);
    }

    @Test
    void shouldLeaveTextThatIsNoCallAsContent() {
        var hermes = setup(ToolCalls.Format.HERMES, "auto");
        for (String text : List.of("Once upon a time", "<tool_call>{\"name\":\"unknown\",\"arguments\":{}}</tool_call>",
                "<tool_call>{\"name\":\"ping\",</tool_call>", "{\"name\":\"ping\"")) {
            var p = ToolCalls.parse(text, hermes);
            assertThat(p.calls()).as(text).isEmpty();
            assertThat(p.content()).isEqualTo(text);
        }
    }

    @Test
    void shouldReadLlamaJsonCalls() {
        var llama = setup(ToolCalls.Format.LLAMA, "auto");
        var p = ToolCalls.parse("<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}",
                llama);
        assertThat(p.content()).isNull();
        assertThat(p.calls()).singleElement().satisfies(c -> {
            assertThat(c.name()).isEqualTo("get_weather");
            assertThat(c.arguments()).isEqualTo("{\"city\":\"Oslo\"}");
        });
        assertThat(ToolCalls.parse("{\"name\":\"ping\",\"arguments\":\"{}\"}", llama).calls().getFirst().arguments())
                .as("arguments given as a JSON text stay that text").isEqualTo("{}");
    }

    @Test
    void shouldDetectTheFormatFromTheTemplate() {
        assertThat(ToolCalls.Format.of(ChatTemplate.compile("{% if tools %}<tool_call>{% endif %}")))
                .isEqualTo(ToolCalls.Format.HERMES);
        assertThat(ToolCalls.Format.of(ChatTemplate.compile("{{ tools }} {\"name\": x, \"parameters\": y}")))
                .isEqualTo(ToolCalls.Format.LLAMA);
        assertThat(ToolCalls.Format.of(ChatTemplate.compile("{{ tools }}"))).isEqualTo(ToolCalls.Format.JSON);
    }

    static boolean accepts(SchemaGrammar g, String text) {
        var s = SchemaGrammar.feed(g.initial(), text.getBytes(StandardCharsets.UTF_8));
        return !s.isEmpty() && g.complete(s);
    }

    @Test
    void shouldForceOneCallInTheTemplatesFormat() {
        SchemaGrammar hermes = ToolCalls.grammar(setup(ToolCalls.Format.HERMES, "required"));
        assertThat(accepts(hermes, "<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"x\"}}\n"
                + "</tool_call>")).isTrue();
        assertThat(accepts(hermes, "<tool_call>\n{\"arguments\":{},\"name\":\"ping\"}\n</tool_call>")).isTrue();
        assertThat(accepts(hermes, "<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{}}\n</tool_call>"))
                .as("the parameters' required key").isFalse();
        assertThat(accepts(hermes, "{\"name\":\"ping\",\"arguments\":{}}")).isFalse();
        SchemaGrammar named = ToolCalls.grammar(setup(ToolCalls.Format.LLAMA, "ping"));
        assertThat(accepts(named, "{\"name\":\"ping\",\"parameters\":{\"a\":1}}")).isTrue();
        assertThat(accepts(named, "{\"name\":\"get_weather\",\"parameters\":{\"city\":\"x\"}}")).isFalse();
        assertThat(accepts(named, "{\"name\":\"ping\",\"arguments\":{}}")).isFalse();
    }
}
