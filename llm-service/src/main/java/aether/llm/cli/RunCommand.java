package aether.llm.cli;

import aether.llm.engine.LoadedModel;
import aether.llm.generate.Completion;
import aether.llm.generate.GenerationListener;
import aether.llm.generate.GenerationRequest;
import aether.llm.generate.TextGenerator;
import aether.llm.sampling.SamplerConfig;
import aether.llm.tokenizer.Tokenizer;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ./aether run}: completes a prompt, streaming the text to stdout as it is generated; the seed (when not given)
 * and the prompt/decode speeds go to stderr. Bad input (model file, option values) gives one line on stderr and exit
 * code 2.
 */
@Command(name = "run", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Generate text from a prompt with a GGUF model (default: the bundled stories260K), streaming it.")
public final class RunCommand implements Callable<Integer> {

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", defaultValue = "",
            description = "the prompt; empty = start from BOS alone (default: empty)")
    String prompt;

    @Option(names = {"-n", "--n-predict"}, paramLabel = "N", defaultValue = "256",
            description = "tokens to generate at most; -1 = until end of text or a full context (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--stop", paramLabel = "S", description = "stop before this text (not printed); repeatable")
    List<String> stop = List.of();

    @Option(names = "--ignore-eos", description = "go on past end-of-generation tokens")
    boolean ignoreEos;

    @Option(names = "--context-shift", description = "when the context is full, drop the older half of the tokens "
            + "after --keep and re-run the rest, instead of stopping")
    boolean contextShift;

    @Option(names = "--keep", paramLabel = "N", defaultValue = "0",
            description = "prompt tokens a context shift keeps, besides BOS (default: ${DEFAULT-VALUE})")
    int keep;

    @Option(names = "--no-display-prompt", description = "print only the generated text, not the prompt before it")
    boolean noDisplayPrompt;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    SamplingOptions samplingOptions;

    @Spec
    CommandSpec spec;

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
            if (keep < 0) {
                throw new IllegalArgumentException("--keep " + keep + " (expected 0+)");
            }
            modelOptions.engineOptions(1);   // option values checked before the model is read
            try (LoadedModel m = modelOptions.open(1, err)) {
                Tokenizer tokenizer = m.tokenizer();
                int[] ids = tokenizer.encode(prompt, true, true);
                if (ids.length == 0) {
                    throw new IllegalArgumentException("empty prompt and the vocabulary adds no BOS (give -p TEXT)");
                }
                boolean bos = ids[0] == tokenizer.specialTokens().bos() && tokenizer.addBos();
                var request = new GenerationRequest(ids, maxTokens, sampling, stop, new int[0], ignoreEos,
                        contextShift, keep + (bos ? 1 : 0), -1);
                if (samplingOptions.seed == null && !sampling.isGreedy()) {
                    err.println("aether run: seed " + seed + " (pass --seed " + seed + " to repeat this run)");
                    err.flush();
                }
                if (!noDisplayPrompt) {
                    out.print(prompt);
                    out.flush();
                }
                var generator = new TextGenerator(m.model(), tokenizer, modelOptions.batchSize, 1);
                Completion c = generator.generate(request, new GenerationListener() {
                    @Override
                    public void onText(CharSequence text) {
                        out.append(text);
                        out.flush();
                    }
                });
                out.println();
                out.flush();
                err.printf("aether run: %s; %d tokens generated, stopped: %s%s%n", c.timings().summary(),
                        c.generatedTokens(), describe(c), c.contextShifts() > 0 ? ", context shifts: " + c.contextShifts() : "");
                err.flush();
                return 0;
            }
        } catch (RuntimeException e) {
            return CliSupport.fail(spec.commandLine(), e, modelOptions.debug);
        }
    }

    static String describe(Completion c) {
        return switch (c.finishReason()) {
            case STOP_TOKEN -> "end of generation token";
            case STOP_STRING -> "stop string \"" + c.stopString() + "\"";
            case LENGTH -> "token limit";
            case CONTEXT_FULL -> "context full (--ctx, or --context-shift to go on)";
            case CANCELLED -> "cancelled";
            case ERROR -> "error";
        };
    }
}
