package aether.llm.server;

/**
 * One request's token choice, with its own state (random generator, penalty counts). Called only on the engine
 * thread, once per generated token.
 */
public interface TokenSampler {

    /**
     * Chooses the next token from the logits {@code [offset, offset + vocab)}. May overwrite that range (it is the
     * engine's scratch row for this sequence).
     */
    int sample(float[] logits, int offset, int vocab);

    /**
     * Creates a request's sampler; {@code vocab} is the model's vocabulary size, {@code budget} the most tokens it
     * will be asked for (max tokens, or what the context leaves).
     */
    @FunctionalInterface
    interface Factory {
        TokenSampler create(SamplingParams params, int vocab, int budget);
    }
}
