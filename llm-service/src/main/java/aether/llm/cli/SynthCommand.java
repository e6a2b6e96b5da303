package aether.llm.cli;

import aether.llm.gguf.GgufFile;
import aether.llm.gguf.GgufFormatException;
import aether.llm.gguf.ModelSummary;
import aether.llm.gguf.TensorInfo;
import aether.llm.synth.SynthSpec;
import aether.llm.synth.SyntheticModel;
import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ./aether synth}: writes a random-weight Llama-shaped GGUF of a preset or custom shape, with the tokenizer of
 * a real vocab GGUF — the files benchmarks run on where real weights of that size cannot be shipped. Streams: memory
 * stays small for multi-gigabyte files; deterministic for a seed. Bad arguments give one line on stderr, exit 2.
 */
@Command(name = "synth", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write a random-weight Llama GGUF (presets tiny, 1b, 8b) with a tokenizer copied from a vocab GGUF.")
public final class SynthCommand implements Callable<Integer> {

    static final int EXIT_BAD_ARGS = 2;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "the .gguf file to write")
    Path output;

    @Option(names = "--vocab", required = true, paramLabel = "GGUF",
            description = "GGUF whose tokenizer.* metadata (and so vocab size) the model gets, "
                    + "e.g. ../shared/models/vocab/ggml-vocab-llama-spm.gguf")
    Path vocab;

    @Option(names = "--preset", defaultValue = "tiny", description = "tiny, 1b (16 layers, dim 2048, ffn 8192, 32/8 heads) "
            + "or 8b (32 layers, dim 4096, ffn 14336, 32/8 heads); default: ${DEFAULT-VALUE}")
    String preset;

    @Option(names = "--type", defaultValue = "Q4_0", description = "type of every 2-D weight: Q4_0, Q8_0, Q4_K, Q6_K, "
            + "F16, BF16, F32, … (norms stay F32); default: ${DEFAULT-VALUE}")
    String type;

    @Option(names = "--seed", defaultValue = "42", description = "random seed; the same seed gives the same file")
    long seed;

    @Option(names = "--layers", description = "override the preset's layer count") Integer layers;
    @Option(names = "--dim", description = "override the embedding width") Integer dim;
    @Option(names = "--ffn", description = "override the feed-forward width") Integer ffn;
    @Option(names = "--heads", description = "override the attention head count") Integer heads;
    @Option(names = "--kv-heads", description = "override the key/value head count") Integer kvHeads;
    @Option(names = "--ctx", description = "override llama.context_length") Integer ctx;

    @Option(names = "--threads", description = "threads generating and quantizing weights; default: all cores")
    Integer threads;

    @Option(names = {"-f", "--force"}, description = "overwrite the output file if it exists")
    boolean force;

    @Option(names = "--debug", description = "print the stack trace of a failure")
    boolean debug;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try {
            GgmlType weightType = GgmlType.byName(type).orElseThrow(() -> new IllegalArgumentException(
                    "type: %s (expected one of %s)".formatted(type, SyntheticModel.writableTypes())));
            SynthSpec s = override(SynthSpec.preset(preset, weightType, seed));
            if (Files.exists(output) && !force) {
                return fail(output + ": exists (use --force to overwrite)", null);
            }
            SyntheticModel model = SyntheticModel.of(s, vocab);
            long expected = model.tensorBytes();
            out.printf("writing %s: llama, %d layers, dim %d, ffn %d, %d/%d heads, vocab %,d, %s, %s parameters, %s of tensors%n",
                    output, s.layers(), s.dim(), s.ffn(), s.heads(), s.kvHeads(), model.vocabSize(), s.weightType(),
                    ModelSummary.humanCount(model.parameterCount()), ModelSummary.humanBytes(expected));
            out.flush();
            var progress = new ProgressBar(spec.commandLine().getErr(), expected);
            long t0 = System.nanoTime();
            Path partial = output.resolveSibling(output.getFileName() + ".partial");
            int n = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            long written = model.write(partial, n, progress::update);
            progress.done();
            Files.move(partial, output, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            double seconds = (System.nanoTime() - t0) / 1e9;
            try (GgufFile check = GgufFile.open(output)) {
                long tensorBytes = check.tensors().stream().mapToLong(TensorInfo::sizeBytes).sum();
                if (tensorBytes != expected) {
                    return fail("%s: tensor data is %,d bytes, expected %,d".formatted(output, tensorBytes, expected), null);
                }
            }
            out.printf("wrote %s: %,d bytes (%,d of tensor data) in %.1f s%n", output, written, expected, seconds);
            return 0;
        } catch (IllegalArgumentException | GgufFormatException e) {
            return fail(e.getMessage(), e);
        } catch (NoSuchFileException e) {
            return fail(e.getFile() + ": no such file", e);
        } catch (IOException e) {
            return fail(e.toString(), e);
        } catch (RuntimeException e) {
            return fail("unexpected " + e, e);
        }
    }

    private SynthSpec override(SynthSpec p) {
        return new SynthSpec(p.name(), or(layers, p.layers()), or(dim, p.dim()), or(ffn, p.ffn()), or(heads, p.heads()),
                or(kvHeads, p.kvHeads()), or(ctx, p.contextLength()), p.ropeFreqBase(), p.rmsEps(), p.weightType(),
                p.seed());
    }

    private static int or(Integer value, int fallback) {
        return value != null ? value : fallback;
    }

    private int fail(String message, Exception cause) {
        PrintWriter err = spec.commandLine().getErr();
        err.println("aether synth: " + message.replace('\n', ' '));
        if (debug && cause != null) {
            cause.printStackTrace(err);
        }
        err.flush();
        return EXIT_BAD_ARGS;
    }

    /** A one-line progress bar on stderr, redrawn at most five times a second. */
    private static final class ProgressBar {
        private final PrintWriter err;
        private final long total;
        private final long startNs = System.nanoTime();
        private long lastDrawNs;
        private long lastDone = -1;

        ProgressBar(PrintWriter err, long total) {
            this.err = err;
            this.total = Math.max(1, total);
        }

        void update(long done) {
            long now = System.nanoTime();
            if (now - lastDrawNs < 200_000_000L && done < total) {
                return;
            }
            lastDrawNs = now;
            lastDone = done;
            int width = 30, filled = (int) (width * done / total);
            double seconds = Math.max(1e-9, (now - startNs) / 1e9);
            err.printf("\r[%s%s] %3d%% %s / %s  %s/s ", "#".repeat(filled), ".".repeat(width - filled),
                    100 * done / total, ModelSummary.humanBytes(done), ModelSummary.humanBytes(total),
                    ModelSummary.humanBytes((long) (done / seconds)));
            err.flush();
        }

        void done() {
            if (lastDone != total) {
                update(total);
            }
            err.println();
            err.flush();
        }
    }
}
