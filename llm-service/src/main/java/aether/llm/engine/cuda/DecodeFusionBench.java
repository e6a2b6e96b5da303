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

    /** A configuration and its name in the table: the fusions, and Q4_0 GEMVs loading weights early or not. */
    record Config(String name, DecodeFusions fusions, boolean earlyWeights) {
        Config(String name, DecodeFusions fusions) {
            this(name, fusions, false);
        }
    }

    /**
     * All on, all off, each one off alone, all on with SwiGLU by rows (no counters), then no fusions with the Q4_0
     * GEMVs' early weight loads ({@code -Daether.cuda.earlyWeights}).
     */
    static final List<Config> CONFIGS = List.of(new Config("all", DecodeFusions.ALL),
            new Config("none (default)", DecodeFusions.NONE), new Config("all but norm", new DecodeFusions(false, true, true)),
            new Config("all but swiglu", new DecodeFusions(true, false, true)),
            new Config("all but rope", new DecodeFusions(true, true, false)),
            new Config("swiglu by rows", new DecodeFusions(true, true, true, true)),
            new Config("early weights", DecodeFusions.NONE, true));

    private DecodeFusionBench() {}

    public static void main(String[] args) {
        if (args.length < 1 || args.length > 3) {
            System.err.println("usage: DecodeFusionBench MODEL.gguf [tokens=128] [rounds=3]");
            System.exit(2);
        }
        Path model = Path.of(args[0]);
        int tokens = args.length > 1 ? positive(args[1], "tokens") : 128;
        int rounds = args.length > 2 ? positive(args[2], "rounds") : 3;
        if (!Files.isRegularFile(model)) {
            throw new IllegalArgumentException("model " + model + " is not a file");
        }
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(tokens + 1).withMaxSequences(1);
        try (LoadedModel loaded = CudaModels.open(model, options)) {
            CudaInferenceModel gpu = (CudaInferenceModel) loaded.model();
            double[][] rates = run(gpu, tokens, rounds);
            System.out.print(table(model.getFileName() + " on " + gpu.deviceName(), tokens, rounds, rates));
        }
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
    static double[][] run(CudaInferenceModel gpu, int tokens, int rounds) {
        DecodeFusions before = gpu.fusions();
        boolean earlyBefore = gpu.earlyWeights();
        double[][] rates = new double[CONFIGS.size()][rounds];
        float[] logits = new float[gpu.config().vocabSize()];
        SplittableRandom random = new SplittableRandom(42);
        try {
            for (int r = 0; r < rounds; r++) {
                for (int c = 0; c < CONFIGS.size(); c++) {
                    gpu.useFusions(CONFIGS.get(c).fusions());
                    gpu.useEarlyWeights(CONFIGS.get(c).earlyWeights());
                    generate(gpu, Math.min(tokens, 16), random, logits);   // warm-up: the graph is captured here
                    rates[c][r] = tokens * 1e9 / generate(gpu, tokens, random, logits);
                }
            }
        } finally {
            gpu.useFusions(before);
            gpu.useEarlyWeights(earlyBefore);
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

    /** The table: median, min and max t/s per configuration, and the median against the first configuration's. */
    static String table(String what, int tokens, int rounds, double[][] rates) {
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT,
                "decode fusions A/B: %s, tg%d, %d rounds (configurations in turn)%n", what, tokens, rounds));
        s.append(String.format(Locale.ROOT, "| %-16s | %10s | %10s | %10s | %8s |%n", "fusions", "median t/s",
                "min", "max", "vs all"));
        s.append("|------------------|-----------:|-----------:|-----------:|---------:|\n");
        double base = median(rates[0]);
        List<String> rows = new ArrayList<>();
        for (int c = 0; c < CONFIGS.size(); c++) {
            double[] r = rates[c].clone();
            Arrays.sort(r);
            rows.add(String.format(Locale.ROOT, "| %-16s | %10.1f | %10.1f | %10.1f | %7.3fx |%n", CONFIGS.get(c).name(),
                    median(r), r[0], r[r.length - 1], median(r) / base));
        }
        rows.forEach(s::append);
        return s.toString();
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
}
