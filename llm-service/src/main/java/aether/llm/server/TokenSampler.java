package aether.llm.server;

import aether.llm.sampling.CandidateRequest;
import aether.llm.sampling.Candidates;

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
     * Whether {@link #sample} always returns the first largest logit ({@code aether.llm.sampling.Argmax#first}) and
     * reads nothing else: then the engine may skip the logits, compute the argmax with the model's step and hand it to
     * {@link #acceptArgmax}. False unless a sampler says so (constrained or wrapping samplers inherit false).
     */
    default boolean argmaxOnly() {
        return false;
    }

    /**
     * Takes {@code token}, the argmax of this step's logits computed by the model, as {@link #sample} would have
     * chosen and recorded it; returns it. Only for samplers whose {@link #argmaxOnly} is true.
     */
    default int acceptArgmax(int token) {
        throw new UnsupportedOperationException("this sampler needs the logits (argmaxOnly() is false)");
    }

    /**
     * The candidate request for this step's token when the engine may hand out sampling candidates instead of the
     * logits ({@code InferenceModel.RowKind.CANDIDATES}), or null when this sampler needs the logits row (the
     * default; constrained and wrapping samplers). {@code topLogprobs} is the request's log-probability count (-1 for
     * none): log-probabilities are of the raw logits, so they come from the candidates only when nothing adjusts the
     * row and the candidates hold the top entries. Call again for every token (the adjustments change).
     */
    default CandidateRequest candidateRequest(int topLogprobs) {
        return null;
    }

    /**
     * Chooses and records the next token from row {@code row} of {@code candidates}, exactly as {@link #sample} would
     * from the logits; only after this step's {@link #candidateRequest} said {@code decides}.
     */
    default int sampleCandidates(Candidates candidates, int row) {
        throw new UnsupportedOperationException("this sampler needs the logits (candidateRequest is null)");
    }

    /**
     * Creates a request's sampler; {@code vocab} is the model's vocabulary size, {@code budget} the most tokens it
     * will be asked for (max tokens, or what the context leaves).
     */
    @FunctionalInterface
    interface Factory {
        TokenSampler create(SamplingParams params, int vocab, int budget);
    }
}
