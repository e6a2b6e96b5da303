package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.chat.ChatMessage;
import aether.llm.chat.ChatTemplate;
import aether.llm.gguf.GgufFile;
import aether.llm.gguf.GgufWriter;
import aether.llm.server.InferenceServer;
import aether.llm.server.ServeSettings;
import aether.llm.tokenizer.Tokenizer;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Chat completions render the model's own {@code tokenizer.chat_template} (a copy of stories260K given a Llama-2 style
 * template with {@code bos_token}), fall back to ChatML for a model without one, and take {@code --chat-template}.
 */
class ChatTemplateServeTest {

    static final String LLAMA2_STYLE = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
            + "<<SYS>>\n{{ m['content'] }}\n<</SYS>>\n\n{% elif m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
            + "{% else %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

    static final String MESSAGES = "[{\"role\":\"system\",\"content\":\"You tell stories.\"},"
            + "{\"role\":\"user\",\"content\":\"A cat\"},{\"role\":\"assistant\",\"content\":\"Once there was a cat.\"},"
            + "{\"role\":\"user\",\"content\":\"More\"}]";

    static final List<ChatMessage> AS_RECORDS = List.of(ChatMessage.system("You tell stories."),
            ChatMessage.user("A cat"), ChatMessage.assistant("Once there was a cat."), ChatMessage.user("More"));

    static ServeSettings settings(Path model, String template) {
        return new ServeSettings(model, "127.0.0.1", 0, Set.of(), 2, 4, 0, 512, 2, 64, 0, 64 * 1024, 0, template,
                "m");
    }

    /** The server's prompt must be the template's rendering, tokenized with special tokens parsed (BOS in text). */
    static void assertServedWith(Path model, String templateChoice, ChatTemplate expectedTemplate, Tokenizer tok)
            throws Exception {
        String rendered = expectedTemplate.render(AS_RECORDS, true);
        boolean bosInText = !expectedTemplate.bosToken().isEmpty() && rendered.startsWith(expectedTemplate.bosToken());
        int[] ids = tok.encode(rendered, !bosInText, true);
        try (var server = InferenceServer.start(settings(model, templateChoice))) {
            var c = new ServerClient(server.port(), null);
            JsonNode chat = c.postJson("/v1/chat/completions", "{\"messages\":" + MESSAGES
                    + ",\"max_tokens\":12,\"temperature\":0}");
            assertThat(chat.get("usage").get("prompt_tokens").asInt()).isEqualTo(ids.length);
            JsonNode completion = c.postJson("/v1/completions", "{\"prompt\":"
                    + Arrays.toString(ids).replace(" ", "") + ",\"max_tokens\":12,\"temperature\":0}");
            assertThat(chat.get("choices").get(0).get("message").get("content").asText())
                    .isEqualTo(completion.get("choices").get(0).get("text").asText());
        }
    }

    @Test
    @Timeout(120)
    void shouldRenderTheModelsOwnTemplate(@TempDir Path dir) throws Exception {
        Path source = SharedData.require("models/stories260K.gguf");
        Path withTemplate = dir.resolve("stories-chat.gguf");
        Tokenizer tok;
        try (GgufFile f = GgufFile.open(source)) {
            GgufWriter.write(withTemplate, f.metadata().toBuilder().putString("tokenizer.chat_template", LLAMA2_STYLE)
                    .build(), GgufWriter.tensorsOf(f));
            tok = Tokenizer.fromGguf(f.metadata());
        }
        ChatTemplate expected = ChatTemplate.compile("default", LLAMA2_STYLE, tok.tokenText(tok.specialTokens().bos()),
                tok.tokenText(tok.specialTokens().eos()));
        assertThat(expected.render(AS_RECORDS, true)).startsWith("<s><<SYS>>");
        assertServedWith(withTemplate, null, expected, tok);
    }

    @Test
    @Timeout(120)
    void shouldFallBackToChatMlAndTakeATemplateFile(@TempDir Path dir) throws Exception {
        Path model = SharedData.require("models/stories260K.gguf");
        Tokenizer tok;
        try (GgufFile f = GgufFile.open(model)) {
            tok = Tokenizer.fromGguf(f.metadata());
        }
        String bos = tok.tokenText(tok.specialTokens().bos());
        String eos = tok.tokenText(tok.specialTokens().eos());
        ChatTemplate chatml = ChatTemplate.compile("chatml", "{%- for message in messages -%}{{- '<|im_start|>' + "
                + "message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}{%- endfor -%}"
                + "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}", bos, eos);
        assertThat(chatml.render(AS_RECORDS, true)).startsWith("<|im_start|>system\nYou tell stories.<|im_end|>\n");
        assertServedWith(model, null, chatml, tok);
        Path file = dir.resolve("template.jinja");
        Files.writeString(file, LLAMA2_STYLE);
        assertServedWith(model, file.toString(), ChatTemplate.compile("f", LLAMA2_STYLE, bos, eos), tok);
    }
}
