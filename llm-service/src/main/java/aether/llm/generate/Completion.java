package aether.llm.generate;

/**
 * The result of one finished generation.
 *
 * @param tokens         every sampled token in order, including a final stop token (whose text is not rendered)
 * @param text           the text streamed to the listener, all of it (ends before a matched stop string)
 * @param finishReason   why it ended
 * @param stopString     the stop string that matched, or {@code null}
 * @param promptTokens   the prompt's length in tokens
 * @param cachedTokens   prompt tokens whose KV entries were reused from the sequence instead of being recomputed
 * @param contextTokens  the tokens the sequence holds now, in order (prompt and generated tokens that were fed back,
 *                       after any context shift): what a follow-up request can reuse as its cached prefix
 * @param contextShifts  how many times the context was shifted (half of the tokens after the kept start dropped and
 *                       the rest re-run)
 * @param timings        prefill and decode times
 * @param error          the failure when {@code finishReason} is {@link FinishReason#ERROR}, else {@code null}
 */
public record Completion(int[] tokens, String text, FinishReason finishReason, String stopString, int promptTokens,
        int cachedTokens, int[] contextTokens, int contextShifts, GenerationTimings timings, RuntimeException error) {

    public Completion {
        tokens = tokens.clone();
        contextTokens = contextTokens.clone();
    }

    @Override
    public int[] tokens() {
        return tokens.clone();
    }

    @Override
    public int[] contextTokens() {
        return contextTokens.clone();
    }

    /** Generated tokens (the stop token included). */
    public int generatedTokens() {
        return tokens.length;
    }
}
