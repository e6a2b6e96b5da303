package aether.llm.cli;

import aether.llm.chat.ChatTemplate;
import aether.llm.engine.LoadedModel;
import aether.llm.generate.ChatSession;
import aether.llm.generate.Completion;
import aether.llm.generate.FinishReason;
import aether.llm.generate.GenerationListener;
import aether.llm.generate.TextGenerator;
import aether.llm.sampling.SamplerConfig;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ./aether chat}: an interactive conversation with the model's chat template. Each line read from stdin is a
 * user message; the reply streams to stdout, followed by an empty line. {@code /reset} starts over, {@code /exit} or
 * end of input (Ctrl-D) leaves with exit code 0. Turns reuse the KV cache (see {@link ChatSession}).
 *
 * <p>A model without {@code tokenizer.chat_template} (such as the bundled stories260K) is refused with one line and
 * exit code 2, unless {@code --chat-template-file} supplies a template: there is no guessed fallback, since a wrong
 * template gives silently bad replies.
 */
@Command(name = "chat", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Chat with a GGUF model using its chat template; /reset starts over, Ctrl-D or /exit leaves.")
public final class ChatCommand implements Callable<Integer> {

    @Option(names = {"-n", "--n-predict"}, paramLabel = "N", defaultValue = "1024",
            description = "tokens per reply at most; -1 = until end of turn or a full context (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--system", paramLabel = "TEXT", description = "a system message opening the conversation")
    String system;

    @Option(names = "--chat-template-file", paramLabel = "FILE",
            description = "a Jinja chat template to use instead of the model's (required if the model has none)")
    Path templateFile;

    @Option(names = "--stop", paramLabel = "S", description = "also end a reply before this text; repeatable")
    List<String> stop = List.of();

    @Option(names = "--timings", description = "print each reply's prompt/decode speed and reused tokens to stderr")
    boolean timings;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    SamplingOptions samplingOptions;

    @Spec
    CommandSpec spec;

    /** Where user lines come from (tests replace it). */
    InputStream input = System.in;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try {
            long seed = samplingOptions.seedOrRandom();
            SamplerConfig sampling = samplingOptions.config(seed);
            if (maxTokens == 0 || maxTokens < -1) {
                throw new IllegalArgumentException("-n " + maxTokens + " (expected 1+, or -1 for no limit)");
            }
            String templateSource = templateFile == null ? null : readTemplate(templateFile);
            modelOptions.engineOptions(1);
            try (LoadedModel m = modelOptions.open(1, err)) {
                ChatTemplate template = chooseTemplate(m, templateSource);
                if (samplingOptions.seed == null && !sampling.isGreedy()) {
                    err.println("aether chat: seed " + seed + " (pass --seed " + seed + " to repeat this conversation)");
                }
                boolean interactive = input == System.in && System.console() != null && System.console().isTerminal();
                err.println("aether chat: type a message and Enter; /reset starts over, /exit or Ctrl-D leaves");
                err.flush();
                var generator = new TextGenerator(m.model(), m.tokenizer(), modelOptions.batchSize, 1);
                try (var session = new ChatSession(generator, template, system, maxTokens, sampling, stop)) {
                    return loop(session, out, err, interactive);
                }
            }
        } catch (RuntimeException e) {
            return CliSupport.fail(spec.commandLine(), e, modelOptions.debug);
        }
    }

    private int loop(ChatSession session, PrintWriter out, PrintWriter err, boolean interactive) {
        var reader = new BufferedReader(new InputStreamReader(input, StandardCharsets.UTF_8));
        var streamer = new GenerationListener() {
            @Override
            public void onText(CharSequence text) {
                out.append(text);
                out.flush();
            }
        };
        while (true) {
            if (interactive) {
                out.print("> ");
                out.flush();
            }
            String line;
            try {
                line = reader.readLine();
            } catch (IOException e) {
                throw new UncheckedIOException("reading stdin: " + e.getMessage(), e);
            }
            if (line == null) {                      // Ctrl-D
                if (interactive) {
                    out.println();
                }
                out.flush();
                return 0;
            }
            String text = line.strip();
            if (text.isEmpty()) {
                continue;
            }
            if (text.equals("/exit") || text.equals("/quit")) {
                return 0;
            }
            if (text.equals("/reset")) {
                session.reset();
                err.println("aether chat: conversation reset");
                err.flush();
                continue;
            }
            try {
                Completion c = session.send(line, streamer);
                out.println();
                out.println();
                out.flush();
                if (c.finishReason() == FinishReason.CONTEXT_FULL || c.finishReason() == FinishReason.LENGTH) {
                    err.println("aether chat: reply cut off: " + RunCommand.describe(c));
                }
                if (timings) {
                    err.printf("aether chat: %s; %d of %d prompt tokens reused from the cache%n", c.timings().summary(),
                            c.cachedTokens(), c.promptTokens());
                }
                err.flush();
            } catch (IllegalArgumentException e) {
                // the conversation outgrew the context: say so and keep the session usable
                err.println("aether chat: " + CliSupport.oneLine(e.getMessage()));
                err.flush();
            }
        }
    }

    private static String readTemplate(Path file) {
        try {
            return Files.readString(file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new IllegalArgumentException("--chat-template-file " + file + ": no such file");
        } catch (IOException e) {
            throw new IllegalArgumentException("--chat-template-file " + file + ": " + e.getMessage());
        }
    }

    private static ChatTemplate chooseTemplate(LoadedModel m, String source) {
        if (source != null) {
            var md = m.file().metadata();
            List<String> tokens = md.getStringArray("tokenizer.ggml.tokens", List.of());
            return ChatTemplate.compile("--chat-template-file", source, tokenText(tokens, m.tokenizer().specialTokens().bos()),
                    tokenText(tokens, m.tokenizer().specialTokens().eos()));
        }
        return m.chatTemplate().orElseThrow(() -> new IllegalArgumentException(m.path()
                + " has no chat template (tokenizer.chat_template); give one with --chat-template-file FILE, "
                + "or use 'aether run' for plain completion"));
    }

    private static String tokenText(List<String> tokens, int id) {
        return id >= 0 && id < tokens.size() ? tokens.get(id) : "";
    }
}
