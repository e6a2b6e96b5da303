package aether.llm.chat;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The chat-template cases of llama.cpp's {@code tests/test-chat-template.cpp} (ggml-org/llama.cpp), templates and
 * expected strings copied verbatim into {@code llama-cpp-chat-templates.json}: the Jinja expectation where llama.cpp
 * has one, else the shared one. llama.cpp's conversation is six turns with a system prompt; for templates without a
 * system role llama.cpp first merges it into the first user turn ({@code "system\nuser"}), which the
 * {@code system-merged} conversation reproduces, since that polyfill is llama.cpp's and not the template's.
 */
class LlamaCppChatTemplateVectorsTest {

    private static final JsonNode VECTORS = load();

    private static JsonNode load() {
        try (InputStream in = LlamaCppChatTemplateVectorsTest.class.getResourceAsStream("llama-cpp-chat-templates.json")) {
            return new ObjectMapper().readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Stream<Arguments> cases() {
        var out = new ArrayList<Arguments>();
        for (JsonNode c : VECTORS.get("cases")) {
            out.add(Arguments.of(Named.of(c.get("name").asText(), c)));
        }
        return out.stream();
    }

    static List<ChatMessage> conversation(String kind) {
        var messages = new ArrayList<ChatMessage>();
        for (JsonNode m : VECTORS.get("conversations").get(kind)) {
            messages.add(new ChatMessage(m.get("role").asText(), m.get("content").asText(), null, List.of(), null));
        }
        return messages;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void shouldRenderAsLlamaCppExpects(JsonNode c) {
        var template = ChatTemplate.compile(c.get("name").asText(), c.get("template").asText(),
                c.get("bos_token").asText(), c.get("eos_token").asText());

        String out = template.render(conversation(c.get("conversation").asText()), true);

        assertThat(out).isEqualTo(c.get("expected").asText());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void shouldRenderTheSameFromACompiledTemplateEveryTime(JsonNode c) {
        var template = ChatTemplate.compile(c.get("name").asText(), c.get("template").asText(),
                c.get("bos_token").asText(), c.get("eos_token").asText());
        var messages = conversation(c.get("conversation").asText());

        String first = template.render(messages, true);

        for (int i = 0; i < 3; i++) {
            assertThat(template.render(messages, true)).isEqualTo(first);
        }
    }
}
