package aether.llm.generate;

import aether.llm.sampling.SamplerConfig;
import java.util.List;
import java.util.Objects;

/**
 * What to generate.
 *
 * @param prompt           the prompt's token ids (BOS included if wanted), at least one
 * @param maxTokens        generated tokens at most; {@code -1} for no limit (until a stop or the context is full)
 * @param sampling         how tokens are picked; its penalty window starts with the prompt's tokens (as llama.cpp's CLI)
 * @param stopStrings      texts that end the generation; the text stops before the first match and the match is not
 *                         emitted
 * @param stopTokens       token ids that end the generation besides the vocabulary's end-of-generation tokens
 * @param ignoreEndOfGeneration keep going past end-of-generation tokens (benchmarks; the tokens are still generated)
 * @param contextShift     when the sequence fills the context: {@code false} stops with
 *                         {@link FinishReason#CONTEXT_FULL}; {@code true} drops the older half of the tokens after the
 *                         first {@code keepTokens} and re-runs the rest (the KV of the kept tail is recomputed at its
 *                         new positions), then goes on
 * @param keepTokens       tokens at the start that a context shift never drops (e.g. 1 for BOS)
 * @param topLogprobs      {@code -1}: no log-probabilities; {@code 0..20}: the chosen token's and that many top ones,
 *                         given to {@link GenerationListener#onToken}
 */
public record GenerationRequest(int[] prompt, int maxTokens, SamplerConfig sampling, List<String> stopStrings,
        int[] stopTokens, boolean ignoreEndOfGeneration, boolean contextShift, int keepTokens, int topLogprobs) {

    public static final int MAX_TOP_LOGPROBS = 20;

    public GenerationRequest {
        Objects.requireNonNull(sampling, "sampling");
        prompt = prompt.clone();
        stopTokens = stopTokens.clone();
        stopStrings = List.copyOf(stopStrings);
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt (expected at least one token)");
        }
        if (maxTokens < -1 || maxTokens == 0) {
            throw new IllegalArgumentException("max tokens " + maxTokens + " (expected 1+, or -1 for no limit)");
        }
        for (String s : stopStrings) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("empty stop string (expected at least one character)");
            }
        }
        if (keepTokens < 0) {
            throw new IllegalArgumentException("keep tokens " + keepTokens + " (expected 0+)");
        }
        if (topLogprobs < -1 || topLogprobs > MAX_TOP_LOGPROBS) {
            throw new IllegalArgumentException("top logprobs " + topLogprobs + " (expected -1 for none, or 0.."
                    + MAX_TOP_LOGPROBS + ")");
        }
    }

    /** A request with no stops beyond the vocabulary's, no context shift and no log-probabilities. */
    public static GenerationRequest of(int[] prompt, int maxTokens, SamplerConfig sampling) {
        return new GenerationRequest(prompt, maxTokens, sampling, List.of(), new int[0], false, false, 0, -1);
    }

    @Override
    public int[] prompt() {
        return prompt.clone();
    }

    @Override
    public int[] stopTokens() {
        return stopTokens.clone();
    }

    public GenerationRequest withStopStrings(List<String> stops) {
        return new GenerationRequest(prompt, maxTokens, sampling, stops, stopTokens, ignoreEndOfGeneration,
                contextShift, keepTokens, topLogprobs);
    }

    public GenerationRequest withStopTokens(int... ids) {
        return new GenerationRequest(prompt, maxTokens, sampling, stopStrings, ids, ignoreEndOfGeneration,
                contextShift, keepTokens, topLogprobs);
    }

    public GenerationRequest withIgnoreEndOfGeneration(boolean ignore) {
        return new GenerationRequest(prompt, maxTokens, sampling, stopStrings, stopTokens, ignore, contextShift,
                keepTokens, topLogprobs);
    }

    public GenerationRequest withContextShift(boolean shift, int keep) {
        return new GenerationRequest(prompt, maxTokens, sampling, stopStrings, stopTokens, ignoreEndOfGeneration,
                shift, keep, topLogprobs);
    }

    public GenerationRequest withTopLogprobs(int n) {
        return new GenerationRequest(prompt, maxTokens, sampling, stopStrings, stopTokens, ignoreEndOfGeneration,
                contextShift, keepTokens, n);
    }
}
