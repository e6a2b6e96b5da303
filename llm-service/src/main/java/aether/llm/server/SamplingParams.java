package aether.llm.server;

import java.util.Map;

/**
 * How one request picks its tokens, as the OpenAI fields give it. Validated at the HTTP edge (the field names are in
 * the errors there); the constructor only guards invariants.
 *
 * @param temperature      0 = greedy (argmax); otherwise logits are divided by it before sampling
 * @param topP             nucleus mass in (0, 1]
 * @param topK             0 = off
 * @param minP             0 = off
 * @param presencePenalty  subtracted once from the logit of every token already generated, -2..2
 * @param frequencyPenalty subtracted per occurrence of a token already generated, -2..2
 * @param seed             the sampler's seed; with the same seed and request the output repeats across restarts
 * @param logitBias        token id → bias added to its logit (-100 bans, 100 forces)
 * @param jsonObject       constrain the output to one JSON object ({@code response_format: json_object})
 * @param grammar          null, or the grammar the output must follow ({@code response_format: json_schema}, a
 *                         forced tool call)
 */
public record SamplingParams(double temperature, double topP, int topK, double minP, double presencePenalty,
        double frequencyPenalty, long seed, Map<Integer, Double> logitBias, boolean jsonObject,
        SchemaGrammar grammar) {

    public static final SamplingParams GREEDY = new SamplingParams(0, 1, 0, 0, 0, 0, 0, Map.of(), false);

    public SamplingParams {
        if (!(temperature >= 0) || !(topP > 0 && topP <= 1) || topK < 0 || !(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("sampling temperature " + temperature + ", top_p " + topP + ", top_k "
                    + topK + ", min_p " + minP);
        }
        logitBias = Map.copyOf(logitBias);
    }

    /** Without a grammar. */
    public SamplingParams(double temperature, double topP, int topK, double minP, double presencePenalty,
            double frequencyPenalty, long seed, Map<Integer, Double> logitBias, boolean jsonObject) {
        this(temperature, topP, topK, minP, presencePenalty, frequencyPenalty, seed, logitBias, jsonObject, null);
    }

    /** This with another seed (the choices of an {@code n > 1} request). */
    public SamplingParams withSeed(long newSeed) {
        return new SamplingParams(temperature, topP, topK, minP, presencePenalty, frequencyPenalty, newSeed, logitBias,
                jsonObject, grammar);
    }

    /** This with a grammar instead of any JSON constraint. */
    SamplingParams withGrammar(SchemaGrammar g) {
        return new SamplingParams(temperature, topP, topK, minP, presencePenalty, frequencyPenalty, seed, logitBias,
                false, g);
    }

    public boolean greedy() {
        return temperature == 0;
    }
}
