package aether.llm.generate;

import aether.llm.chat.ChatMessage;
import aether.llm.chat.ChatTemplate;
import aether.llm.engine.Sequence;
import aether.llm.sampling.SamplerConfig;
import aether.llm.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A multi-turn conversation over one {@link Sequence}: each turn re-renders the whole conversation with the chat
 * template (with the generation prompt), keeps the longest common token prefix that the sequence already holds, and
 * runs only the rest. So a turn costs its new tokens, and a template that renders earlier turns differently (e.g.
 * dropping old reasoning) still gives exactly the tokens a fresh run would see.
 *
 * <p>BOS: the rendered text is tokenized with special tokens parsed, and BOS is added as the vocabulary says unless
 * the text already starts with the BOS token's text (templates that write {@code bos_token} themselves). Each turn's
 * sampler is seeded with {@code seed + turn index}, so a conversation is reproducible. Not thread-safe.
 */
public final class ChatSession implements AutoCloseable {

    private final TextGenerator generator;
    private final ChatTemplate template;
    private final Tokenizer tokenizer;
    private final String systemPrompt;
    private final int maxTokens;
    private final SamplerConfig sampling;
    private final List<String> stopStrings;
    private final Sequence sequence;
    private final List<ChatMessage> messages = new ArrayList<>();
    private int[] held = new int[0];
    private int turn;

    /**
     * @param systemPrompt a system message opening the conversation, or {@code null}
     * @param maxTokens    tokens per reply at most, or {@code -1}
     */
    public ChatSession(TextGenerator generator, ChatTemplate template, String systemPrompt, int maxTokens,
            SamplerConfig sampling, List<String> stopStrings) {
        this.generator = Objects.requireNonNull(generator, "generator");
        this.template = Objects.requireNonNull(template, "template");
        this.tokenizer = generator.tokenizer();
        this.systemPrompt = systemPrompt;
        this.maxTokens = maxTokens;
        this.sampling = Objects.requireNonNull(sampling, "sampling");
        this.stopStrings = List.copyOf(stopStrings);
        this.sequence = generator.model().newSequence();
        reset();
    }

    /**
     * Adds a user message, generates the reply (streamed to {@code listener}) and adds it to the conversation.
     *
     * @throws IllegalArgumentException when the conversation no longer fits the context (the message is not added)
     * @throws aether.llm.chat.ChatTemplateException when the template fails (the message is not added)
     */
    public Completion send(String userMessage, GenerationListener listener) {
        messages.add(ChatMessage.user(userMessage));
        int[] prompt;
        try {
            prompt = render();
            if (prompt.length >= generator.model().contextSize()) {
                throw new IllegalArgumentException("the conversation is " + prompt.length
                        + " tokens, the context " + generator.model().contextSize() + " (reset it to go on)");
            }
        } catch (RuntimeException e) {
            messages.removeLast();
            throw e;
        }
        int common = 0;
        while (common < held.length && common < prompt.length && held[common] == prompt[common]) {
            common++;
        }
        var request = new GenerationRequest(prompt, maxTokens, sampling.withSeed(sampling.seed() + turn),
                stopStrings, new int[0], false, false, 0, -1);
        Completion c;
        try {
            c = generator.generate(request, sequence, common, listener);
        } catch (RuntimeException e) {
            messages.removeLast();
            sequence.truncate(0);    // what the sequence holds is no longer known for sure
            held = new int[0];
            throw e;
        }
        held = c.contextTokens();
        messages.add(ChatMessage.assistant(c.text()));
        turn++;
        return c;
    }

    /** Forgets the conversation (the system prompt stays) and empties the sequence. */
    public void reset() {
        messages.clear();
        if (systemPrompt != null) {
            messages.add(ChatMessage.system(systemPrompt));
        }
        sequence.truncate(0);
        held = new int[0];
        turn = 0;
    }

    /** The conversation so far, oldest first. */
    public List<ChatMessage> messages() {
        return List.copyOf(messages);
    }

    /** The prompt tokens the next turn would see if {@code messages} were the conversation (for tests and tools). */
    public int[] tokenize(List<ChatMessage> conversation) {
        String text = template.render(conversation, true);
        boolean startsWithBos = !template.bosToken().isEmpty() && text.startsWith(template.bosToken());
        return tokenizer.encode(text, !startsWithBos, true);
    }

    private int[] render() {
        return tokenize(messages);
    }

    @Override
    public void close() {
        sequence.close();
    }
}
