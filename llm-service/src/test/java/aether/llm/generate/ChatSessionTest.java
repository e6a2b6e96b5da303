package aether.llm.generate;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.chat.ChatMessage;
import aether.llm.chat.ChatTemplate;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.LoadedModel;
import aether.llm.sampling.SamplerConfig;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class ChatSessionTest {

    private static final ChatTemplate TEMPLATE = ChatTemplate.compile("test", """
            {{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}
            {% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}""", "<s>", "</s>");

    /** A later turn, run on the cached prefix, gives exactly the reply of a fresh run on the whole conversation. */
    @Test
    void shouldAnswerALaterTurnAsAFreshRunOfTheWholeConversationWould() {
        try (LoadedModel m = TextGeneratorTest.open(EngineOptions.DEFAULTS)) {
            var generator = new TextGenerator(m.model(), m.tokenizer(), 8, 1);
            SamplerConfig sampling = SamplerConfig.defaults(11).withTemperature(0.7f);
            try (var session = new ChatSession(generator, TEMPLATE, "Be kind.", 16, sampling, List.of())) {
                Completion first = session.send("Once upon a time", GenerationListener.NONE);
                Completion second = session.send("What happened next?", GenerationListener.NONE);
                assertThat(second.cachedTokens()).isGreaterThan(first.promptTokens() - 1);

                List<ChatMessage> conversation = List.of(ChatMessage.system("Be kind."),
                        ChatMessage.user("Once upon a time"), ChatMessage.assistant(first.text()),
                        ChatMessage.user("What happened next?"));
                int[] prompt = session.tokenize(conversation);
                assertThat(prompt[0]).as("BOS written by the template, not added twice").isEqualTo(1);
                assertThat(prompt[1]).isNotEqualTo(1);
                Completion fresh = generator.generate(GenerationRequest.of(prompt, 16, sampling.withSeed(12)),
                        GenerationListener.NONE);
                assertThat(second.promptTokens()).isEqualTo(prompt.length);
                assertThat(second.tokens()).containsExactly(fresh.tokens());
                assertThat(session.messages()).hasSize(5);
                session.reset();
                assertThat(session.messages()).containsExactly(ChatMessage.system("Be kind."));
            }
        }
    }
}
