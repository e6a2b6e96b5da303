package aether.llm.sampling;

import java.util.Map;
import java.util.Objects;

/**
 * How a {@link Sampler} picks tokens. The transformations run in llama.cpp's default order: logit bias, penalties,
 * top-k, top-p, min-p, temperature, then a draw from the softmax of what is left. Top-p and min-p therefore see the
 * probabilities at temperature 1, as in llama.cpp.
 *
 * @param temperature      divides the logits before the final softmax; {@code 0} is greedy (argmax after bias and
 *                         penalties, ties to the lower id, no random draw)
 * @param topK             keep the {@code k} largest logits; {@code 0} disables
 * @param topP             keep the smallest prefix of the sorted candidates whose probability sum reaches {@code p}
 *                         (at least one token); {@code 1} disables
 * @param minP             keep tokens whose probability is at least {@code minP} times the largest one; {@code 0}
 *                         disables
 * @param repeatPenalty    for a token seen in the last {@code penaltyLastN} accepted tokens: positive logits are divided
 *                         by it, others multiplied (llama.cpp); {@code 1} disables
 * @param presencePenalty  subtracted once from the logit of a token seen in the window (OpenAI {@code presence_penalty})
 * @param frequencyPenalty subtracted per occurrence in the window (OpenAI {@code frequency_penalty})
 * @param penaltyLastN     how many of the most recently accepted tokens the penalties look at; {@code 0} disables
 * @param logitBias        added to a token's logit before everything else; {@code -Infinity} bans the token
 * @param seed             seeds the sampler's own generator: the same seed, config and logits give the same tokens on
 *                         every run and machine. There is no time-based default: a caller wanting variety picks a random
 *                         seed itself (and can print it)
 */
public record SamplerConfig(float temperature, int topK, float topP, float minP, float repeatPenalty,
        float presencePenalty, float frequencyPenalty, int penaltyLastN, Map<Integer, Float> logitBias, long seed) {

    /** llama.cpp's common defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties, window 64. */
    public static SamplerConfig defaults(long seed) {
        return new SamplerConfig(0.8f, 40, 0.95f, 0.05f, 1.0f, 0f, 0f, 64, Map.of(), seed);
    }

    /** Greedy decoding: temperature 0, every filter and penalty off. */
    public static SamplerConfig greedy() {
        return new SamplerConfig(0f, 0, 1f, 0f, 1f, 0f, 0f, 0, Map.of(), 0L);
    }

    public SamplerConfig {
        Objects.requireNonNull(logitBias, "logitBias");
        check(temperature >= 0 && Float.isFinite(temperature), "temperature", temperature, "a finite value >= 0 (0 is greedy)");
        check(topK >= 0, "top-k", topK, ">= 0 (0 disables)");
        check(topP > 0 && topP <= 1, "top-p", topP, "in (0, 1] (1 disables)");
        check(minP >= 0 && minP <= 1, "min-p", minP, "in [0, 1] (0 disables)");
        check(repeatPenalty > 0 && Float.isFinite(repeatPenalty), "repeat penalty", repeatPenalty, "a finite value > 0 (1 disables)");
        check(Float.isFinite(presencePenalty), "presence penalty", presencePenalty, "a finite value");
        check(Float.isFinite(frequencyPenalty), "frequency penalty", frequencyPenalty, "a finite value");
        check(penaltyLastN >= 0, "penalty window", penaltyLastN, ">= 0 (0 disables)");
        for (var e : logitBias.entrySet()) {
            Integer id = e.getKey();
            Float bias = e.getValue();
            if (id == null || id < 0 || bias == null || Float.isNaN(bias) || bias == Float.POSITIVE_INFINITY) {
                throw new IllegalArgumentException("logit bias " + id + " -> " + bias
                        + " (expected a token id >= 0 and a finite bias or -Infinity to ban the token)");
            }
        }
        logitBias = Map.copyOf(logitBias);
    }

    private static void check(boolean ok, String what, Object value, String expected) {
        if (!ok) {
            throw new IllegalArgumentException(what + ": " + value + " (expected " + expected + ")");
        }
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    boolean hasPenalties() {
        return penaltyLastN > 0 && (repeatPenalty != 1f || presencePenalty != 0f || frequencyPenalty != 0f);
    }

    public SamplerConfig withTemperature(float t) {
        return new SamplerConfig(t, topK, topP, minP, repeatPenalty, presencePenalty, frequencyPenalty, penaltyLastN, logitBias, seed);
    }

    public SamplerConfig withTopK(int k) {
        return new SamplerConfig(temperature, k, topP, minP, repeatPenalty, presencePenalty, frequencyPenalty, penaltyLastN, logitBias, seed);
    }

    public SamplerConfig withTopP(float p) {
        return new SamplerConfig(temperature, topK, p, minP, repeatPenalty, presencePenalty, frequencyPenalty, penaltyLastN, logitBias, seed);
    }

    public SamplerConfig withMinP(float p) {
        return new SamplerConfig(temperature, topK, topP, p, repeatPenalty, presencePenalty, frequencyPenalty, penaltyLastN, logitBias, seed);
    }

    /** The three penalties and their window at once. */
    public SamplerConfig withPenalties(float repeat, float presence, float frequency, int lastN) {
        return new SamplerConfig(temperature, topK, topP, minP, repeat, presence, frequency, lastN, logitBias, seed);
    }

    public SamplerConfig withLogitBias(Map<Integer, Float> bias) {
        return new SamplerConfig(temperature, topK, topP, minP, repeatPenalty, presencePenalty, frequencyPenalty, penaltyLastN, bias, seed);
    }

    public SamplerConfig withSeed(long s) {
        return new SamplerConfig(temperature, topK, topP, minP, repeatPenalty, presencePenalty, frequencyPenalty, penaltyLastN, logitBias, s);
    }
}
