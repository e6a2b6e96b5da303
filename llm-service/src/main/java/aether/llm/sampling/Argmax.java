package aether.llm.sampling;

/**
 * Greedy token choice: the first largest logit. The one definition shared by {@link Sampler}'s greedy path and the
 * engines' argmax-only steps ({@code InferenceModel.step(batch, logits, logitsWanted, argmaxOut)}), so a token taken on
 * the device and one sampled on the host can never differ. One scalar pass: a Vector API version (maximum, then its
 * first index) was tried and dropped: in the decode loop C2 left it boxed, 92 KB allocated per step.
 */
public final class Argmax {

    private Argmax() {}

    /**
     * The index (relative to {@code offset}) of the first largest of {@code logits[offset, offset + n)}: strict {@code
     * >}, so ties keep the lower id, as llama.cpp's greedy sampler.
     *
     * @throws IllegalStateException when a logit is NaN or +Infinity ("logit of token i is NaN"), or every logit is
     *                               -Infinity (every token banned)
     */
    public static int first(float[] logits, int offset, int n) {
        java.util.Objects.checkFromIndexSize(offset, n, logits.length);
        if (n < 1) {
            throw new IllegalArgumentException("argmax of " + n + " logits (expected at least 1)");
        }
        int best = 0;
        float bestLogit = logits[offset];
        boolean bad = false;
        for (int id = 0; id < n; id++) {
            float l = logits[offset + id];
            bad |= l != l | l == Float.POSITIVE_INFINITY;   // branch-free here; the culprit is found below
            if (l > bestLogit) {
                best = id;
                bestLogit = l;
            }
        }
        if (bad) {
            for (int id = 0; id < n; id++) {
                float l = logits[offset + id];
                if (Float.isNaN(l) || l == Float.POSITIVE_INFINITY) {
                    throw new IllegalStateException("logit of token " + id + " is " + l);
                }
            }
        }
        if (bestLogit == Float.NEGATIVE_INFINITY) {
            throw new IllegalStateException(ALL_BANNED);
        }
        return best;
    }

    static final String ALL_BANNED = "every candidate token has logit -Infinity (all banned by the logit bias?)";
}
