package aether.llm.server;

import java.util.List;
import java.util.Objects;

/**
 * One sequence to generate, as the engine sees it: token ids in, limits and sampling.
 *
 * @param prompt      the prompt's token ids (non-empty; BOS already added where the vocabulary wants it)
 * @param maxTokens   generated tokens at most (1+); generation also stops when the context is full
 * @param stop        strings that end generation; the text is cut before the first one (at most 4, non-empty)
 * @param sampling    how tokens are chosen
 * @param topLogprobs -1: no log-probabilities; 0: the chosen token's; n: also the n most likely alternatives
 * @param ignoreEos   keep going past end-of-generation tokens (benchmarks and tests of {@code max_tokens})
 */
public record GenerationRequest(int[] prompt, int maxTokens, List<String> stop, SamplingParams sampling,
        int topLogprobs, boolean ignoreEos) {

    public GenerationRequest {
        Objects.requireNonNull(prompt, "prompt");
        if (prompt.length == 0 || maxTokens < 1 || topLogprobs < -1) {
            throw new IllegalArgumentException("generation of " + maxTokens + " tokens after a prompt of "
                    + prompt.length + " (expected a non-empty prompt and max tokens 1+)");
        }
        stop = List.copyOf(stop);
        for (String s : stop) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("empty stop string");
            }
        }
        Objects.requireNonNull(sampling, "sampling");
    }
}
