package aether.llm.chat;

import aether.llm.gguf.GgufFormatException;
import aether.llm.gguf.GgufMetadata;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.InterpretException;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.tree.Node;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * A model's chat template (Hugging Face Jinja), compiled once, rendering conversations into the prompt text the model
 * was trained on. Semantics follow transformers' {@code apply_chat_template}: the template sees {@code messages},
 * {@code add_generation_prompt}, {@code bos_token}, {@code eos_token} and whatever {@code extra} adds (e.g.
 * {@code tools}, {@code date_string}, {@code enable_thinking}); undefined names render empty and are
 * {@code not defined}, as with Jinja's default {@code Undefined}.
 *
 * <p>Immutable and thread-safe: {@link #render} may run on many threads at once. Failures, at compile or render time,
 * are {@link ChatTemplateException}s naming the line; nothing of the Jinja engine leaks.
 */
public final class ChatTemplate {

    /** The GGUF key of the default template. */
    public static final String GGUF_KEY = "tokenizer.chat_template";
    /** Prefix of named templates, e.g. {@code tokenizer.chat_template.tool_use}. */
    public static final String GGUF_NAMED_PREFIX = GGUF_KEY + ".";
    public static final String DEFAULT_NAME = "default";

    private final String name;
    private final String source;
    private final Node root;
    private final String bosToken;
    private final String eosToken;
    private final Clock clock;

    private ChatTemplate(String name, String source, Node root, String bosToken, String eosToken, Clock clock) {
        this.name = name;
        this.source = source;
        this.root = root;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.clock = clock;
    }

    /** Compiles {@code source} with empty BOS/EOS tokens; see {@link #compile(String, String, String, String)}. */
    public static ChatTemplate compile(String source) {
        return compile(DEFAULT_NAME, source, "", "");
    }

    /**
     * Compiles a template. {@code bosToken}/{@code eosToken} are the texts of the model's BOS/EOS tokens, bound as
     * {@code bos_token}/{@code eos_token} unless a render's {@code extra} overrides them.
     *
     * @throws ChatTemplateException on a syntax error, naming the line
     */
    @SuppressWarnings("deprecation")   // push/popCurrent: the closeable variant adds nothing to a try/finally
    public static ChatTemplate compile(String name, String source, String bosToken, String eosToken) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(source, "source");
        checkNames(name, source);
        var interpreter = newInterpreter();
        JinjavaInterpreter.pushCurrent(interpreter);
        Node root;
        try {
            root = interpreter.parse(TemplateRewriter.rewrite(source));
        } catch (InterpretException e) {
            throw new ChatTemplateException(name, Math.max(0, e.getLineNumber()), Math.max(0, e.getStartPosition()),
                    clean(e.getMessage()), false);
        } catch (RuntimeException e) {
            throw new ChatTemplateException(name, 0, 0, describe(e), false);
        } finally {
            JinjavaInterpreter.popCurrent();
        }
        throwFirstError(name, interpreter.getErrors());
        return new ChatTemplate(name, source, root, bosToken == null ? "" : bosToken, eosToken == null ? "" : eosToken,
                Clock.systemDefaultZone());
    }

    /** Jinja rejects unknown filters and tests at compile time; Jinjava would silently render them empty. */
    private static void checkNames(String name, String source) {
        var context = JinjaEnvironment.JINJAVA.getGlobalContext();
        for (TemplateRewriter.NameUse use : TemplateRewriter.filtersAndTests(source)) {
            boolean known = use.isTest() ? context.getExpTest(use.name()) != null : context.getFilter(use.name()) != null;
            if (!known) {
                throw new ChatTemplateException(name, use.line(), 0,
                        "no " + (use.isTest() ? "test" : "filter") + " named '" + use.name() + "'", false);
            }
        }
    }

    /**
     * The default chat template of a GGUF model ({@code tokenizer.chat_template}), with BOS/EOS token texts from
     * {@code tokenizer.ggml.tokens} and {@code tokenizer.ggml.bos_token_id}/{@code eos_token_id}; empty when the
     * model has no template.
     */
    public static Optional<ChatTemplate> fromGguf(GgufMetadata metadata) {
        return fromGguf(metadata, DEFAULT_NAME);
    }

    /**
     * A template by name: {@code "default"} is {@code tokenizer.chat_template}, any other name is
     * {@code tokenizer.chat_template.<name>} (e.g. {@code tool_use}, {@code rag}). Empty when absent.
     */
    public static Optional<ChatTemplate> fromGguf(GgufMetadata metadata, String name) {
        String key = DEFAULT_NAME.equals(name) ? GGUF_KEY : GGUF_NAMED_PREFIX + name;
        Optional<String> source = metadata.getString(key);
        if (source.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(compile(name, source.get(), specialToken(metadata, "tokenizer.ggml.bos_token_id"),
                specialToken(metadata, "tokenizer.ggml.eos_token_id")));
    }

    /** Names of the templates a GGUF model carries: {@code "default"} first if present, then named ones in file order. */
    public static List<String> templateNames(GgufMetadata metadata) {
        var names = new ArrayList<String>();
        if (metadata.contains(GGUF_KEY)) {
            names.add(DEFAULT_NAME);
        }
        for (String key : metadata.keys()) {
            if (key.startsWith(GGUF_NAMED_PREFIX) && key.length() > GGUF_NAMED_PREFIX.length()) {
                names.add(key.substring(GGUF_NAMED_PREFIX.length()));
            }
        }
        return names;
    }

    private static String specialToken(GgufMetadata metadata, String idKey) {
        if (!metadata.contains(idKey)) {
            return "";
        }
        long id = metadata.requireLong(idKey);
        List<String> tokens = metadata.getStringArray("tokenizer.ggml.tokens", List.of());
        if (id < 0 || id >= tokens.size()) {
            throw new GgufFormatException(null, metadata.offsetOf(idKey), "metadata '" + idKey + "'",
                    "token id %d is outside the vocabulary of %,d tokens".formatted(id, tokens.size()));
        }
        return tokens.get((int) id);
    }

    /** This template with {@code strftime_now} reading {@code clock} (tests, or a server pinned to a zone). */
    public ChatTemplate withClock(Clock clock) {
        return new ChatTemplate(name, source, root, bosToken, eosToken, Objects.requireNonNull(clock, "clock"));
    }

    public String name() {
        return name;
    }

    public String source() {
        return source;
    }

    public String bosToken() {
        return bosToken;
    }

    public String eosToken() {
        return eosToken;
    }

    /** {@link #render(List, boolean, Map)} with no extra variables. */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /**
     * Renders a conversation.
     *
     * @param messages            the conversation, oldest first
     * @param addGenerationPrompt whether to end with the header that opens the assistant's turn
     * @param extra               more template variables (JSON-like values: String, Number, Boolean, List, Map,
     *                            null), e.g. {@code tools}, {@code date_string}; they may override {@code bos_token}
     *                            and {@code eos_token} but not {@code messages} or {@code add_generation_prompt}
     * @throws ChatTemplateException when the template raises or fails, naming the line
     */
    @SuppressWarnings("deprecation")   // push/popCurrent: the closeable variant adds nothing to a try/finally
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, ?> extra) {
        var bindings = new HashMap<String, Object>(16 + extra.size() * 2);
        bindings.putAll(JinjaEnvironment.FUNCTION_MARKERS);
        bindings.put("bos_token", bosToken);
        bindings.put("eos_token", eosToken);
        bindings.putAll(extra);
        var values = new ArrayList<Object>(messages.size());
        for (ChatMessage m : messages) {
            values.add(m.toTemplateValue());
        }
        bindings.put("messages", values);
        bindings.put("add_generation_prompt", addGenerationPrompt);

        var interpreter = newInterpreter();
        interpreter.getContext().putAll(bindings);
        JinjavaInterpreter.pushCurrent(interpreter);
        JinjaEnvironment.RENDER_CLOCK.set(clock);
        JinjaEnvironment.FAILURE.remove();
        try {
            String out;
            try {
                out = interpreter.render(root, true);
            } catch (InterpretException e) {
                throw failure(e, e.getLineNumber(), e.getStartPosition());
            } catch (RuntimeException e) {
                throw failure(e, interpreter.getLineNumber(), interpreter.getPosition());
            }
            throwFirstError(name, interpreter.getErrors());
            return out;
        } finally {
            JinjaEnvironment.FAILURE.remove();
            JinjaEnvironment.RENDER_CLOCK.remove();
            JinjavaInterpreter.popCurrent();
        }
    }

    private ChatTemplateException failure(Throwable e, int line, int column) {
        JinjaEnvironment.Failure ours = ourFailure(e);
        if (ours != null) {
            return new ChatTemplateException(name, line, Math.max(0, column), ours.getMessage(), ours.raisedByTemplate);
        }
        return new ChatTemplateException(name, line, Math.max(0, column), describe(e), false);
    }

    /**
     * Jinjava reports some failures as warnings and renders on (e.g. exceeding the macro recursion limit leaves the
     * call empty); a prompt with a silently missing piece is worse than an error. Not UNKNOWN: that is an attribute a
     * value lacks ({@code content.content is defined} on a string), which Jinja treats as undefined.
     */
    private static final java.util.Set<TemplateError.ErrorReason> FAILING_WARNINGS = java.util.EnumSet.of(
            TemplateError.ErrorReason.EXCEPTION, TemplateError.ErrorReason.SYNTAX_ERROR,
            TemplateError.ErrorReason.OUTPUT_TOO_BIG, TemplateError.ErrorReason.COLLECTION_TOO_BIG,
            TemplateError.ErrorReason.MISSING,
            TemplateError.ErrorReason.INVALID_ARGUMENT, TemplateError.ErrorReason.INVALID_INPUT,
            TemplateError.ErrorReason.OVER_LIMIT, TemplateError.ErrorReason.DISABLED);

    private static JinjavaInterpreter newInterpreter() {
        return new JinjaEnvironment.PythonInterpreter(new Context(JinjaEnvironment.JINJAVA.getGlobalContext()));
    }

    private static void throwFirstError(String name, List<TemplateError> errors) {
        for (TemplateError error : errors) {
            if (error.getSeverity() != TemplateError.ErrorType.FATAL && !FAILING_WARNINGS.contains(error.getReason())) {
                continue;
            }
            JinjaEnvironment.Failure ours = ourFailure(error.getException());
            if (ours != null) {
                throw new ChatTemplateException(name, error.getLineno(), 0, ours.getMessage(), ours.raisedByTemplate);
            }
            String reason = clean(error.getMessage());
            Throwable root = rootCause(error.getException());
            if (root != null && root != error.getException() && root.getMessage() != null
                    && !reason.contains(root.getMessage())) {
                reason = reason + ": " + root.getMessage();
            }
            throw new ChatTemplateException(name, Math.max(0, error.getLineno()), Math.max(0, error.getStartPosition()),
                    reason, false);
        }
    }

    /** Our failure in the cause chain, else the one this render recorded (Jinjava may have dropped the cause). */
    private static JinjaEnvironment.Failure ourFailure(Throwable t) {
        for (int depth = 0; t != null && depth < 32; t = t.getCause(), depth++) {
            if (t instanceof JinjaEnvironment.Failure f) {
                return f;
            }
        }
        return JinjaEnvironment.FAILURE.get();
    }

    private static Throwable rootCause(Throwable t) {
        Throwable root = t;
        for (int depth = 0; root != null && root.getCause() != null && depth < 32; depth++) {
            root = root.getCause();
        }
        return root;
    }

    private static String describe(Throwable e) {
        Throwable root = rootCause(e);
        String message = root.getMessage();
        return message == null ? root.getClass().getSimpleName() : clean(message);
    }

    /** Jinjava prefixes some messages with exception class names; users want the sentence. */
    private static String clean(String message) {
        if (message == null) {
            return "unknown error";
        }
        return message.replaceFirst("^[a-z][\\w.]*\\.[A-Z]\\w*(Exception|Error): ", "");
    }

    @Override
    public String toString() {
        return "ChatTemplate[" + name + ", " + source.length() + " chars]";
    }
}
