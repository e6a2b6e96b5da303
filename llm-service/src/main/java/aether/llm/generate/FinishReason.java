package aether.llm.generate;

/** Why a generation ended. */
public enum FinishReason {
    /** An end-of-generation token of the vocabulary or one of the request's stop tokens was sampled. */
    STOP_TOKEN("stop"),
    /** One of the request's stop strings appeared in the text (the text ends before it). */
    STOP_STRING("stop"),
    /** The request's maximum number of tokens was generated. */
    LENGTH("length"),
    /** The sequence reached the context size (or the KV pool was full) and context shift was off. */
    CONTEXT_FULL("length"),
    /** {@link ActiveGeneration#cancel()} was called. */
    CANCELLED("cancelled"),
    /** Sampling or the listener failed; see {@link Completion#error()}. */
    ERROR("error");

    private final String openAiName;

    FinishReason(String openAiName) {
        this.openAiName = openAiName;
    }

    /** The OpenAI {@code finish_reason} for this reason. */
    public String openAiName() {
        return openAiName;
    }
}
