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
 * Decode of one model under several CPU kernel settings, raced step by step in one JVM: the model is opened once per
 * setting (a vector width sets {@code aether.vector.bits}; {@code KEY=VALUE[+KEY=VALUE...]} sets those system
 * properties; each set before the open, which the model's matmuls read when made, and restored after), each gets a
 * sequence with the same prompt, and every round runs one greedy decode step on each in turn, so a shared machine's
 * load falls on all of them alike (what alternating whole {@code ./aether bench} processes cannot give: their figures
 * moved ±20% between runs minutes apart). Reports per width the best and median step, and per pair of widths the
 * median over rounds of the step-time ratio, and in how many warm rounds each setting's logits were the first
 * setting's bit for bit (all decode the first setting's greedy tokens, from a prompt prefilled again once warm).
 * Sequences restart from the prompt when the context fills, so positions
 * (and attention cost) stay matched. Each opened model has its own kernel pool; only one steps at a time.
 *
 * <p>Usage: {@code java -cp <app lib>:<test classes> aether.llm.bench.DecodeRace THREADS SECONDS MODEL SETTING,SETTING...
 * [CONTEXT]}, a SETTING being a width ({@code 256}, {@code 512}) or properties, e.g.
 * {@code aether.matmul.shareActivations=false,aether.matmul.shareActivations=true}; CONTEXT defaults to 512.
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
        int context = args.length > 4 ? Integer.parseInt(args[4]) : 512;
        List<Entry> entries = new ArrayList<>();
        try {
            for (String setting : widths) {
                java.util.Map<String, String> props = new java.util.LinkedHashMap<>();
                if (setting.chars().allMatch(Character::isDigit)) {
                    props.put("aether.vector.bits", setting);
                } else {
                    for (String kv : setting.split("\\+")) {
                        int eq = kv.indexOf('=');
                        if (eq <= 0) {
                            throw new IllegalArgumentException("DecodeRace: setting '" + kv
                                    + "' is neither a vector width nor KEY=VALUE");
                        }
                        props.put(kv.substring(0, eq), kv.substring(eq + 1));
                    }
                }
                java.util.Map<String, String> before = new java.util.HashMap<>();
                props.forEach((k, v) -> before.put(k, System.setProperty(k, v)));
                EngineOptions options = EngineOptions.DEFAULTS.withContextSize(context).withThreads(threads);
                LoadedModel loaded = LoadedModel.open(path, options);
                before.forEach((k, v) -> {
                    if (v == null) {
                        System.clearProperty(k);
                    } else {
                        System.setProperty(k, v);
                    }
                });
                PagedInferenceModel m = (PagedInferenceModel) loaded.model();
                String name = props.size() == 1 && props.containsKey("aether.vector.bits") ? setting + "-bit" : setting;
                entries.add(new Entry(name, loaded, m, m.newSequence(), new float[m.config().vocabSize()],
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
            int[] identical = new int[entries.size()];   // warm rounds whose logits were the first setting's, bit for bit
            int rounds = 0;
            int compared = 0;
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warmEnd = System.nanoTime() + (long) (Math.min(15, seconds / 4) * 1e9);
            int position = promptLength;
            boolean wasWarm = false;
            while (System.nanoTime() < end) {
                boolean warm = System.nanoTime() > warmEnd;
                if (warm && !wasWarm) {
                    // start over once the kernels are compiled: the KV rows written while some settings still ran
                    // interpreted or C1 code may differ in the last bits (lane-sum order differs by tier), and the
                    // bit-for-bit comparison is about the settings, not the JIT's timing
                    for (Entry e : entries) {
                        e.seq.truncate(0);
                        e.model.step(List.of(InferenceModel.BatchEntry.of(e.seq, prompt)), e.logits);
                    }
                    int first = argmax(entries.getFirst().logits);
                    for (Entry e : entries) {
                        e.token[0] = first;
                    }
                    position = promptLength;
                    wasWarm = true;
                    for (Entry e : entries) {
                        e.model.setProfiling(true);   // kernel time by kind, for the report
                    }
                }
                if (position >= context - 2) {
                    for (Entry e : entries) {
                        e.seq.truncate(promptLength);
                    }
                    position = promptLength;
                }
                for (int j = 0; j < entries.size(); j++) {
                    Entry e = entries.get((j + rounds) % entries.size());   // rotated: no setting always steps first
                    long t0 = System.nanoTime();
                    e.model.step(List.of(InferenceModel.BatchEntry.of(e.seq, e.token)), e.logits);
                    long dt = System.nanoTime() - t0;
                    if (warm) {
                        e.nanos.add(dt);
                    }
                }
                if (warm) {
                    for (int i = 0; i < entries.size(); i++) {
                        identical[i] += Arrays.equals(entries.get(i).logits, entries.getFirst().logits) ? 1 : 0;
                    }
                    compared++;
                }
                rounds++;
                int next = argmax(entries.getFirst().logits);   // every setting decodes the same tokens
                for (Entry e : entries) {
                    e.token[0] = next;
                }
                position++;
            }
            System.out.printf(Locale.ROOT, "%s, %d thread(s), %.0f s, context %d, one decode step per setting per round%n",
                    path.getFileName(), threads, seconds, context);
            for (Entry e : entries) {
                long[] t = e.nanos.stream().mapToLong(Long::longValue).toArray();
                Arrays.sort(t);
                System.out.printf(Locale.ROOT, "  %-12s best %7.2f ms (%5.1f tok/s)  median %7.2f ms (%5.1f tok/s)  %d steps%n",
                        e.name, t[0] / 1e6, 1e9 / t[0], t[t.length / 2] / 1e6, 1e9 / t[t.length / 2], t.length);
                long[] k = e.model.kernelNanos();
                System.out.printf(Locale.ROOT, "  %-12s per step (mean): matmul %.2f ms, other kernels %.2f ms (attention %.2f)%n",
                        "", k[0] / 1e6 / t.length, k[1] / 1e6 / t.length, k[2] / 1e6 / t.length);
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
            for (int i = 1; i < entries.size(); i++) {
                System.out.printf(Locale.ROOT, "  %s logits bit-identical to %s's in %d of %d rounds%n",
                        entries.get(i).name, base.name, identical[i], compared);
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
