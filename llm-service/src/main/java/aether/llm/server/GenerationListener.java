package aether.llm.server;

import java.util.List;

/**
 * Receives one request's output. Called on the engine thread, in order, and must never block (hand the data to a
 * queue): a slow listener would stall every sequence. Exactly one of {@link #onFinish} or {@link #onError} ends the
 * calls, unless the request was cancelled, after which no call comes.
 */
public interface GenerationListener {

    /**
     * Text that is now final (complete UTF-8 characters, never part of a stop string), and the tokens generated since
     * the previous call (with log-probabilities when the request asked for them; {@code text} may be empty).
     */
    void onText(String text, List<GeneratedToken> tokens);

    void onFinish(FinishReason reason, int promptTokens, int completionTokens);

    void onError(RuntimeException error);

    /** Why generation ended, as OpenAI's {@code finish_reason}. */
    enum FinishReason {
        /** An end-of-generation token or a stop string. */
        STOP("stop"),
        /** {@code max_tokens} or the context window. */
        LENGTH("length"),
        /** The output was a tool call (set by the HTTP layer after reading the output, never by the engine). */
        TOOL_CALLS("tool_calls");

        private final String json;

        FinishReason(String json) {
            this.json = json;
        }

        public String json() {
            return json;
        }
    }

    /**
     * One generated token.
     *
     * @param id       the token id
     * @param logprob  its natural-log probability under the model's distribution (the raw logits), NaN when not asked
     * @param topIds   the most likely tokens at that step, descending (empty unless asked)
     * @param topLogprobs their log-probabilities
     */
    record GeneratedToken(int id, double logprob, int[] topIds, double[] topLogprobs) {}
}
