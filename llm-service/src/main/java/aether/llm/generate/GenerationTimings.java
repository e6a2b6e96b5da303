package aether.llm.generate;

/**
 * Where a generation's time went.
 *
 * @param promptTokens tokens run in prefill (the prompt minus the reused cached prefix)
 * @param promptNs     wall time of the prefill steps, including sampling the first token
 * @param decodeTokens decode steps run (one token each; usually the generated count minus one, since the first token
 *                     comes from the prefill's logits and the last one is not fed back)
 * @param decodeNs     wall time from the end of prefill to the end of the generation (steps, sampling, detokenizing,
 *                     re-prefill after a context shift)
 */
public record GenerationTimings(int promptTokens, long promptNs, int decodeTokens, long decodeNs) {

    public double promptTokensPerSecond() {
        return promptNs == 0 ? 0 : promptTokens * 1e9 / promptNs;
    }

    public double decodeTokensPerSecond() {
        return decodeNs == 0 ? 0 : decodeTokens * 1e9 / decodeNs;
    }

    /** One line for a terminal, e.g. {@code prompt 5 tokens in 12.3 ms (406.5 t/s), decode 47 tokens in ...}. */
    public String summary() {
        return String.format(java.util.Locale.ROOT, "prompt %d tokens in %.1f ms (%.1f t/s), decode %d tokens in %.1f ms (%.1f t/s)",
                promptTokens, promptNs / 1e6, promptTokensPerSecond(), decodeTokens, decodeNs / 1e6, decodeTokensPerSecond());
    }
}
