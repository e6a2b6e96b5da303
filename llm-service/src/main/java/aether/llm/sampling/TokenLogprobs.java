package aether.llm.sampling;

import java.util.Objects;

/**
 * Log-probabilities of one step as OpenAI's {@code logprobs} report them: the natural-log softmax of the model's raw
 * logits (before bias, penalties, filters and temperature), for the chosen token and the {@code n} most likely tokens
 * (descending, ties to the lower id). Computed in float64: {@code l_i - max - log(sum_j exp(l_j - max))}.
 *
 * <p>A reusable holder: {@link #compute} overwrites it and allocates nothing; read the results before the next call.
 * Not thread-safe.
 */
public final class TokenLogprobs {

    private final int[] topIds;
    private final double[] topLogprobs;
    private int count;
    private int chosen;
    private double chosenLogprob;

    /** @param maxTop the most top entries one call may ask for (OpenAI allows 20) */
    public TokenLogprobs(int maxTop) {
        if (maxTop < 0) {
            throw new IllegalArgumentException("maxTop " + maxTop + " (expected 0+)");
        }
        this.topIds = new int[maxTop];
        this.topLogprobs = new double[maxTop];
    }

    /**
     * Computes the log-probabilities of {@code chosen} and of the {@code top} largest logits of
     * {@code logits[offset, offset + vocabSize)}.
     *
     * @throws IllegalArgumentException when {@code top} exceeds the capacity or the vocabulary, or {@code chosen} is
     *                                  outside it
     * @throws IllegalStateException    when a logit is NaN
     */
    public void compute(float[] logits, int offset, int vocabSize, int chosen, int top) {
        Objects.checkFromIndexSize(offset, vocabSize, logits.length);
        if (top < 0 || top > topIds.length || top > vocabSize || chosen < 0 || chosen >= vocabSize) {
            throw new IllegalArgumentException("top " + top + ", chosen " + chosen + " (expected top in 0.."
                    + Math.min(topIds.length, vocabSize) + " and chosen in 0.." + (vocabSize - 1) + ")");
        }
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocabSize; i++) {
            float l = logits[offset + i];
            if (Float.isNaN(l)) {
                throw new IllegalStateException("logit of token " + i + " is NaN");
            }
            max = Math.max(max, l);
        }
        double sum = 0;
        for (int i = 0; i < vocabSize; i++) {
            sum += Math.exp((double) logits[offset + i] - max);
        }
        double logZ = max + Math.log(sum);
        int filled = 0;
        for (int id = 0; id < vocabSize && top > 0; id++) {
            float l = logits[offset + id];
            // insertion into the sorted top list; strict > keeps the lower id first on ties
            if (filled == top && !(l > logits[offset + topIds[top - 1]])) {
                continue;
            }
            int at = filled < top ? filled++ : top - 1;
            while (at > 0 && l > logits[offset + topIds[at - 1]]) {
                topIds[at] = topIds[at - 1];
                at--;
            }
            topIds[at] = id;
        }
        for (int i = 0; i < top; i++) {
            topLogprobs[i] = logits[offset + topIds[i]] - logZ;
        }
        this.count = top;
        this.chosen = chosen;
        this.chosenLogprob = logits[offset + chosen] - logZ;
    }

    public int chosen() {
        return chosen;
    }

    public double chosenLogprob() {
        return chosenLogprob;
    }

    /** How many top entries the last {@link #compute} filled. */
    public int count() {
        return count;
    }

    public int topId(int i) {
        Objects.checkIndex(i, count);
        return topIds[i];
    }

    public double topLogprob(int i) {
        Objects.checkIndex(i, count);
        return topLogprobs[i];
    }
}
