package aether.llm.bench;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Prefill throughput after a given first step, to show whether the order of the first compilations matters: with
 * {@code decode-first} the process runs one 1-token step (a decode step into an empty sequence) before any prefill,
 * with {@code prefill-first} it does not. Then it runs {@code reps} prefills of {@code prompt} tokens and prints the
 * tokens/s of each and the bytes allocated by all threads per prefill. A command-line probe:
 * {@code java -cp <app lib>:<test classes> aether.llm.bench.JitOrderProbe MODEL decode-first|prefill-first [prompt] [reps] [threads]}.
 */
public final class JitOrderProbe {

    private JitOrderProbe() {}

    public static void main(String[] args) {
        Path model = Path.of(args[0]);
        boolean decodeFirst = switch (args[1]) {
            case "decode-first" -> true;
            case "prefill-first" -> false;
            default -> throw new IllegalArgumentException("order: '" + args[1] + "' (expected decode-first or prefill-first)");
        };
        int promptLength = args.length > 2 ? Integer.parseInt(args[2]) : 128;
        int reps = args.length > 3 ? Integer.parseInt(args[3]) : 4;
        int threads = args.length > 4 ? Integer.parseInt(args[4]) : 0;
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(promptLength + 8).withThreads(threads);
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (LoadedModel loaded = LoadedModel.open(model, options)) {
            InferenceModel m = loaded.model();
            int vocab = m.config().vocabSize();
            int[] prompt = new int[promptLength];
            for (int i = 0; i < promptLength; i++) {
                prompt[i] = 1 + (i * 7919) % (vocab - 1);
            }
            float[] logits = new float[vocab];
            try (Sequence s = m.newSequence()) {
                if (decodeFirst) {
                    long t0 = System.nanoTime();
                    m.step(List.of(InferenceModel.BatchEntry.of(s, new int[] {prompt[0]})), logits);
                    System.out.printf(Locale.ROOT, "first step: 1 token, %.0f ms%n", (System.nanoTime() - t0) / 1e6);
                    s.truncate(0);
                }
                for (int r = 0; r < reps; r++) {
                    long b0 = mx.getTotalThreadAllocatedBytes();
                    long t0 = System.nanoTime();
                    m.step(List.of(InferenceModel.BatchEntry.of(s, prompt)), logits);
                    long t1 = System.nanoTime();
                    long bytes = mx.getTotalThreadAllocatedBytes() - b0;
                    s.truncate(0);
                    System.out.printf(Locale.ROOT, "%s prefill %d: %.1f tok/s, %,d B allocated%n", args[1], r,
                            promptLength / ((t1 - t0) / 1e9), bytes);
                }
            }
        }
    }
}
