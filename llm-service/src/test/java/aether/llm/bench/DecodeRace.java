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
 * Decode of one model at several CPU kernel vector widths, raced step by step in one JVM: the model is opened once per
 * width (the {@code aether.vector.bits} property set before each open, which its matmuls read when made), each gets a
 * sequence with the same prompt, and every round runs one greedy decode step on each in turn, so a shared machine's
 * load falls on all of them alike (what alternating whole {@code ./aether bench} processes cannot give: their figures
 * moved ±20% between runs minutes apart). Reports per width the best and median step, and per pair of widths the
 * median over rounds of the step-time ratio. Sequences restart from the prompt when the context fills, so positions
 * (and attention cost) stay matched. Each opened model has its own kernel pool; only one steps at a time.
 *
 * <p>Usage: {@code java -cp <app lib>:<test classes> aether.llm.bench.DecodeRace THREADS SECONDS MODEL BITS,BITS...}
 */
public final class DecodeRace {
    private DecodeRace() {}

    private record Entry(String name, LoadedModel loaded, PagedInferenceModel model, Sequence seq, float[] logits,
                         int[] token, List<Long> nanos) {}

    public static void main(String[] args) {
        int threads = Integer.parseInt(args[0]);
        double seconds = Double.parseDouble(args[1]);
        Path path = Path.of(args[2]);
        String[] widths = args[3].split(",");
        int promptLength = 16;
        int context = 512;
        List<Entry> entries = new ArrayList<>();
        try {
            for (String bits : widths) {
                System.setProperty("aether.vector.bits", bits);
                EngineOptions options = EngineOptions.DEFAULTS.withContextSize(context).withThreads(threads);
                LoadedModel loaded = LoadedModel.open(path, options);
                PagedInferenceModel m = (PagedInferenceModel) loaded.model();
                entries.add(new Entry(bits + "-bit", loaded, m, m.newSequence(), new float[m.config().vocabSize()],
                        new int[1], new ArrayList<>()));
            }
            int vocab = entries.getFirst().model.config().vocabSize();
            int[] prompt = new int[promptLength];
            for (int i = 0; i < promptLength; i++) {
                prompt[i] = 1 + (i * 7919) % (vocab - 1);
            }
            for (Entry e : entries) {
                e.model.step(List.of(InferenceModel.BatchEntry.of(e.seq, prompt)), e.logits);
                e.token[0] = argmax(e.logits);
            }
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warmEnd = System.nanoTime() + (long) (Math.min(15, seconds / 4) * 1e9);
            int position = promptLength;
            while (System.nanoTime() < end) {
                boolean warm = System.nanoTime() > warmEnd;
                if (position >= context - 2) {
                    for (Entry e : entries) {
                        e.seq.truncate(promptLength);
                    }
                    position = promptLength;
                }
                for (Entry e : entries) {
                    long t0 = System.nanoTime();
                    e.model.step(List.of(InferenceModel.BatchEntry.of(e.seq, e.token)), e.logits);
                    long dt = System.nanoTime() - t0;
                    e.token[0] = argmax(e.logits);
                    if (warm) {
                        e.nanos.add(dt);
                    }
                }
                position++;
            }
            System.out.printf(Locale.ROOT, "%s, %d thread(s), %.0f s, one decode step per width per round%n",
                    path.getFileName(), threads, seconds);
            for (Entry e : entries) {
                long[] t = e.nanos.stream().mapToLong(Long::longValue).toArray();
                Arrays.sort(t);
                System.out.printf(Locale.ROOT, "  %-8s best %7.2f ms (%5.1f tok/s)  median %7.2f ms (%5.1f tok/s)  %d steps%n",
                        e.name, t[0] / 1e6, 1e9 / t[0], t[t.length / 2] / 1e6, 1e9 / t[t.length / 2], t.length);
            }
            Entry base = entries.getFirst();
            for (Entry e : entries.subList(1, entries.size())) {
                double[] r = new double[e.nanos.size()];
                for (int i = 0; i < r.length; i++) {
                    r[i] = (double) base.nanos.get(i) / e.nanos.get(i);
                }
                Arrays.sort(r);
                System.out.printf(Locale.ROOT, "  %s speed / %s speed, per round: median %.3f (quartiles %.3f, %.3f)%n",
                        e.name, base.name, r[r.length / 2], r[r.length / 4], r[3 * r.length / 4]);
            }
        } finally {
            for (Entry e : entries) {
                e.seq.close();
                e.loaded.close();
            }
        }
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
