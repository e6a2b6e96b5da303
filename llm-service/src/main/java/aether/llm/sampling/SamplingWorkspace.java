package aether.llm.sampling;

/**
 * Scratch buffers for sampling over one vocabulary size: the adjusted logits, the candidate ids and their
 * probabilities. Samplers that run on the same thread one after another (the sequences of one engine loop) can share
 * one workspace instead of holding a vocabulary-sized set each; its contents are only meaningful during a call.
 *
 * <p>Not thread-safe: two threads must not sample through the same workspace at once.
 */
public final class SamplingWorkspace {

    final int vocabSize;
    /** Logits after bias and penalties (temperature is applied while computing {@link #prob}). */
    final float[] work;
    /** Candidate token ids; the first {@code n} are live after filtering. */
    final int[] index;
    /** Unnormalised probabilities of {@code index[0..n)}. */
    final double[] prob;
    /** Per-token occurrence counts in the penalty window; all zero between calls. */
    final int[] counts;

    public SamplingWorkspace(int vocabSize) {
        if (vocabSize < 1) {
            throw new IllegalArgumentException("vocab size " + vocabSize + " (expected 1+)");
        }
        this.vocabSize = vocabSize;
        this.work = new float[vocabSize];
        this.index = new int[vocabSize];
        this.prob = new double[vocabSize];
        this.counts = new int[vocabSize];
    }

    public int vocabSize() {
        return vocabSize;
    }
}
