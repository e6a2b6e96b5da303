package aether.llm.bench;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.PagedInferenceModel;
import aether.llm.engine.Sequence;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Prefill of several models raced round-robin in one JVM: every round runs one warm prefill of the same prompt length
 * on each model in turn (profiled: matmul, paged attention, other kernels), so a shared machine's load falls on all of
 * them alike (the device-workers {@code GemmRace} idea, end to end). Reports per model the best and median prefill in
 * tokens/s and the matmul share of the median round. Models are opened before the first round and never decode, so
 * this also shows the prefill speeds a process reaches when nothing but prefill ran first.
 *
 * <p>Usage: {@code java -cp <app lib>:<test classes> aether.llm.bench.PrefillRace THREADS SECONDS PROMPT MODEL...}
 */
public final class PrefillRace {
    private PrefillRace() {}

    private record Entry(String name, LoadedModel loaded, PagedInferenceModel model, int[] prompt, float[] logits,
                         List<long[]> samples) {}

    public static void main(String[] args) {
        int threads = Integer.parseInt(args[0]);
        double seconds = Double.parseDouble(args[1]);
        int promptLength = Integer.parseInt(args[2]);
        List<Entry> entries = new ArrayList<>();
        try {
            for (int a = 3; a < args.length; a++) {
                Path path = Path.of(args[a]);
                EngineOptions options = EngineOptions.DEFAULTS.withContextSize(promptLength + 8).withThreads(threads);
                LoadedModel loaded = LoadedModel.open(path, options);
                PagedInferenceModel m = (PagedInferenceModel) loaded.model();
                int vocab = m.config().vocabSize();
                int[] prompt = new int[promptLength];
                for (int i = 0; i < promptLength; i++) {
                    prompt[i] = 1 + (i * 7919) % (vocab - 1);
                }
                entries.add(new Entry(path.getFileName().toString(), loaded, m, prompt, new float[vocab], new ArrayList<>()));
            }
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warmEnd = System.nanoTime() + (long) (seconds / 4 * 1e9);
            while (System.nanoTime() < end) {
                boolean warm = System.nanoTime() > warmEnd;
                for (Entry e : entries) {
                    try (Sequence s = e.model.newSequence()) {
                        e.model.setProfiling(true);   // resets the counters
                        long t0 = System.nanoTime();
                        e.model.step(List.of(InferenceModel.BatchEntry.of(s, e.prompt)), e.logits);
                        long dt = System.nanoTime() - t0;
                        long[] k = e.model.kernelNanos();
                        e.model.setProfiling(false);
                        if (warm) {
                            e.samples.add(new long[] {dt, k[0], k[2], k[1] - k[2]});
                        }
                    }
                }
            }
            System.out.printf(Locale.ROOT, "prefill %d tokens, %d thread(s), %.0f s (first quarter is warm-up)%n",
                    promptLength, threads, seconds);
            for (Entry e : entries) {
                long[][] s = e.samples.toArray(long[][]::new);
                if (s.length == 0) {
                    System.out.printf(Locale.ROOT, "  %-26s no warm rounds (raise SECONDS)%n", e.name);
                    continue;
                }
                Arrays.sort(s, (p, q) -> Long.compare(p[0], q[0]));
                long[] med = s[s.length / 2];
                System.out.printf(Locale.ROOT, "  %-26s best %6.1f tok/s  median %6.1f tok/s (%d rounds); median round %.0f ms:"
                                + " matmul %.0f, attention %.0f, other kernels %.0f%n", e.name,
                        promptLength / (s[0][0] / 1e9), promptLength / (med[0] / 1e9), s.length, med[0] / 1e6,
                        med[1] / 1e6, med[2] / 1e6, med[3] / 1e6);
            }
        } finally {
            for (Entry e : entries) {
                e.loaded.close();
            }
        }
    }
}
