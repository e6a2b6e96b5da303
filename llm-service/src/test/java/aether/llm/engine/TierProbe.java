package aether.llm.engine;

import java.nio.file.Path;
import java.util.List;

/**
 * Prints a hash of every logit bit of a short greedy run per model, and of a batched run of three sequences, {@code reps} times in one process:
 * {@code tier-hash <rep> <file> <hex>}. {@link TierIndependentLogitsTest} runs it in fresh JVMs under different JIT
 * settings: the first repetitions of a default JVM run the kernels interpreted or C1-compiled (the Vector API's Java
 * fallbacks), the last ones C2-compiled (its intrinsics); a C1-only JVM runs the fallbacks throughout.
 *
 * <p>Arguments: {@code reps model.gguf...}.
 */
public final class TierProbe {

    static final int DECODE_STEPS = 6;
    /** Fewer for the batch: in a C1-only JVM the multi-row kernels' Java fallbacks are the slowest part. */
    static final int BATCH_DECODE_STEPS = 2;

    private TierProbe() {}

    public static void main(String[] args) throws Exception {
        int reps = Integer.parseInt(args[0]);
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(64).withMaxSequences(3).withThreads(2);
        for (int a = 1; a < args.length; a++) {
            Path file = Path.of(args[a]);
            try (LoadedModel loaded = LoadedModel.open(file, options)) {
                InferenceModel m = loaded.model();
                for (int rep = 0; rep < reps; rep++) {
                    System.out.printf("tier-hash %d %s %016x%n", rep, file.getFileName(), run(m) * 31 + batched(m));
                }
            }
        }
    }

    /**
     * Three sequences of different lengths prefilled together, then decoded together (the serving engine's batched
     * step, whose multi-row kernels differ from the single-row ones); a hash over every logit of every step.
     */
    private static long batched(InferenceModel m) {
        int vocab = m.config().vocabSize();
        float[] logits = new float[3 * vocab];
        long hash = 1;
        try (Sequence a = m.newSequence(); Sequence b = m.newSequence(); Sequence c = m.newSequence()) {
            Sequence[] seqs = {a, b, c};
            m.step(List.of(InferenceModel.BatchEntry.of(a, 1, 29 % vocab), InferenceModel.BatchEntry.of(b, 1),
                    InferenceModel.BatchEntry.of(c, 1, 450 % vocab, 4996 % vocab)), logits);
            for (int step = 0; ; step++) {
                int[] next = new int[3];
                for (int i = 0; i < 3 * vocab; i++) {
                    hash = hash * 31 + Float.floatToRawIntBits(logits[i]);
                    int row = i / vocab;
                    if (logits[i] > logits[row * vocab + next[row]]) {
                        next[row] = i - row * vocab;
                    }
                }
                if (step == BATCH_DECODE_STEPS) {
                    return hash;
                }
                m.step(List.of(InferenceModel.BatchEntry.of(seqs[0], next[0]),
                        InferenceModel.BatchEntry.of(seqs[1], next[1]),
                        InferenceModel.BatchEntry.of(seqs[2], next[2])), logits);
            }
        }
    }

    /** A 5-token prompt then greedy decode steps; a hash over the bits of every logit of every step. */
    private static long run(InferenceModel m) {
        int vocab = m.config().vocabSize();
        float[] logits = new float[vocab];
        long hash = 1;
        try (Sequence s = m.newSequence()) {
            int[] prompt = {1, 450 % vocab, 4996 % vocab, 17354 % vocab, 1701 % vocab};
            m.step(List.of(InferenceModel.BatchEntry.of(s, prompt)), logits);
            for (int step = 0; ; step++) {
                int best = 0;
                for (int i = 0; i < vocab; i++) {
                    hash = hash * 31 + Float.floatToRawIntBits(logits[i]);
                    if (logits[i] > logits[best]) {
                        best = i;
                    }
                }
                if (step == DECODE_STEPS) {
                    return hash;
                }
                m.step(List.of(InferenceModel.BatchEntry.of(s, new int[] {best})), logits);
            }
        }
    }
}
