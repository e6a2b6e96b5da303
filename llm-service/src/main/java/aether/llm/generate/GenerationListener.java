package aether.llm.generate;

import aether.llm.sampling.TokenLogprobs;

/**
 * Receives a generation's output as it is produced, on the thread that drives the {@link TextGenerator}. A listener
 * that throws ends its generation with {@link FinishReason#ERROR}; other generations go on.
 */
public interface GenerationListener {

    /** A listener that ignores everything. */
    GenerationListener NONE = new GenerationListener() {};

    /**
     * Text that is final: complete UTF-8 characters, past any held-back start of a stop string, never containing a
     * stop string. The sequence is only valid during the call (it is a reused buffer); copy it to keep it.
     */
    default void onText(CharSequence text) {}

    /**
     * Each sampled token, before the stop checks (so an end-of-generation token is reported too), with its
     * log-probabilities if the request asked for them (else {@code null}; a reused holder, valid during the call).
     */
    default void onToken(int token, TokenLogprobs logprobs) {}
}
