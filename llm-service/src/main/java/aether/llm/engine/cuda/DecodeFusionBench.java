package aether.llm.engine.cuda;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Decode speed of one model on GPU 0 under each {@link DecodeFusions} configuration, in one process: the model loads
 * once and the configurations take turns (every round runs each once, tg of {@code tokens} steps as {@code ./aether
 * bench} times it: one token a step, logits downloaded), so clock or temperature drift spreads over all of them and
 * the ratios come from one card. For the A/B of the fused decode kernels ({@code scripts/gpu-check.sh --remote} runs it
 * on the 8b Q4_0 model); usage: {@code DecodeFusionBench MODEL.gguf [tokens=128] [rounds=3]}.
 */
public final class DecodeFusionBench {

    /** A configuration and its name in the table. */
    record Config(String name, DecodeFusions fusions) {}

    /** All on, all off, each one off alone, then all on with SwiGLU by rows (no counters). */
    static final List<Config> CONFIGS = List.of(new Config("all", DecodeFusions.ALL),
            new Config("none (default)", DecodeFusions.NONE), new Config("all but norm", new DecodeFusions(false, true, true)),
            new Config("all but swiglu", new DecodeFusions(true, false, true)),
            new Config("all but rope", new DecodeFusions(true, true, false)),
            new Config("swiglu by rows", new DecodeFusions(true, true, true, true)));

    private DecodeFusionBench() {}

    public static void main(String[] args) {
        if (args.length < 1 || args.length > 4) {
            System.err.println("usage: DecodeFusionBench MODEL.gguf [tokens=128] [rounds=3] [configurations=all, as "
                    + "indices into the table's rows, e.g. 1,6]");
            System.exit(2);
        }
        Path model = Path.of(args[0]);
        int tokens = args.length > 1 ? positive(args[1], "tokens") : 128;
        int rounds = args.length > 2 ? positive(args[2], "rounds") : 3;
        List<Config> configs = args.length > 3 ? select(args[3]) : CONFIGS;
        if (!Files.isRegularFile(model)) {
            throw new IllegalArgumentException("model " + model + " is not a file");
        }
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(tokens + 1).withMaxSequences(1);
        try (LoadedModel loaded = CudaModels.open(model, options)) {
            CudaInferenceModel gpu = (CudaInferenceModel) loaded.model();
            double[][] rates = run(gpu, configs, tokens, rounds);
            boolean[] same = sameLogits(gpu, configs);
            System.out.print(table(model.getFileName() + " on " + gpu.deviceName(), configs, tokens, rounds, rates,
                    same));
        }
    }

    /** The configurations at the comma-separated indices of {@link #CONFIGS}, in the order given. */
    static List<Config> select(String indices) {
        List<Config> out = new ArrayList<>();
        for (String part : indices.split(",")) {
            int i;
            try {
                i = Integer.parseInt(part.strip());
            } catch (NumberFormatException e) {
                i = -1;
            }
            if (i < 0 || i >= CONFIGS.size()) {
                throw new IllegalArgumentException("configuration " + part + " (expected indices 0.." + (CONFIGS.size()
                        - 1) + " of " + CONFIGS.stream().map(Config::name).toList() + ", comma-separated)");
            }
            out.add(CONFIGS.get(i));
        }
        return out;
    }

    /**
     * Whether each configuration's logits after the same 8 tokens are bit for bit the first configuration's (every
     * fusion is meant to change the launches, not the numbers).
     */
    static boolean[] sameLogits(CudaInferenceModel gpu, List<Config> configs) {
        Config before = current(gpu);
        int vocab = gpu.config().vocabSize();
        float[] first = new float[vocab], logits = new float[vocab];
        boolean[] same = new boolean[configs.size()];
        try {
            for (int c = 0; c < configs.size(); c++) {
                use(gpu, configs.get(c));
                generate(gpu, 8, new SplittableRandom(7), c == 0 ? first : logits);
                same[c] = c == 0 || Arrays.equals(first, logits);
            }
        } finally {
            use(gpu, before);
        }
        return same;
    }

    /** The model's settings now, as a configuration (to put back after a run). */
    private static Config current(CudaInferenceModel gpu) {
        return new Config("current", gpu.fusions());
    }

    private static void use(CudaInferenceModel gpu, Config c) {
        gpu.useFusions(c.fusions());
    }

    private static int positive(String v, String what) {
        try {
            int n = Integer.parseInt(v);
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException e) {
            // the message below
        }
        throw new IllegalArgumentException(what + " " + v + " (expected a whole number, 1 or more)");
    }

    /** rates[config][round], tokens/s; the model's fusions are left as they were. */
    static double[][] run(CudaInferenceModel gpu, List<Config> configs, int tokens, int rounds) {
        Config before = current(gpu);
        double[][] rates = new double[configs.size()][rounds];
        float[] logits = new float[gpu.config().vocabSize()];
        SplittableRandom random = new SplittableRandom(42);
        try {
            for (int r = 0; r < rounds; r++) {
                for (int c = 0; c < configs.size(); c++) {
                    use(gpu, configs.get(c));
                    generate(gpu, Math.min(tokens, 16), random, logits);   // warm-up: the graph is captured here
                    rates[c][r] = tokens * 1e9 / generate(gpu, tokens, random, logits);
                }
            }
        } finally {
            use(gpu, before);
        }
        return rates;
    }

    /** Nanoseconds for {@code n} single-token steps of a fresh sequence (random tokens, as bench's tg). */
    private static long generate(InferenceModel model, int n, SplittableRandom random, float[] logits) {
        int[] ids = random.ints(n, 0, model.config().vocabSize()).toArray();
        try (Sequence s = model.newSequence()) {
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                model.step(List.of(new BatchEntry(s, ids, i, i + 1)), logits);
            }
            return System.nanoTime() - t0;
        }
    }

    /**
     * The table: median, min and max t/s per configuration, the median against the first configuration's, and whether
     * its logits were the first configuration's bit for bit ({@link #sameLogits}).
     */
    static String table(String what, List<Config> configs, int tokens, int rounds, double[][] rates, boolean[] same) {
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT,
                "decode fusions A/B: %s, tg%d, %d rounds (configurations in turn)%n", what, tokens, rounds));
        s.append(String.format(Locale.ROOT, "| %-16s | %10s | %10s | %10s | %8s | %10s |%n", "fusions", "median t/s",
                "min", "max", "vs first", "same bits"));
        s.append("|------------------|-----------:|-----------:|-----------:|---------:|------------|\n");
        double base = median(rates[0]);
        for (int c = 0; c < configs.size(); c++) {
            double[] r = rates[c].clone();
            Arrays.sort(r);
            s.append(String.format(Locale.ROOT, "| %-16s | %10.1f | %10.1f | %10.1f | %7.3fx | %-10s |%n",
                    configs.get(c).name(), median(r), r[0], r[r.length - 1], median(r) / base,
                    c == 0 ? "reference" : same[c] ? "yes" : "NO"));
        }
        return s.toString();
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
}
