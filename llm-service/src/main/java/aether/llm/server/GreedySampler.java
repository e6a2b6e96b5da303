package aether.llm.server;

import java.util.Map;

/**
 * Argmax after the logit bias and the OpenAI presence/frequency penalties over the tokens generated so far
 * ({@code logit[t] -= presence * (count[t] > 0) + frequency * count[t]}). Ties go to the lower id, as llama.cpp's
 * greedy sampler does, so a batch of identical requests gives identical outputs.
 */
final class GreedySampler implements TokenSampler {

    private final int[] biasIds;
    private final float[] biasValues;
    private final float presence;
    private final float frequency;
    private final int[] counts;

    GreedySampler(SamplingParams params, int vocab) {
        biasIds = new int[params.logitBias().size()];
        biasValues = new float[biasIds.length];
        int i = 0;
        for (Map.Entry<Integer, Double> e : params.logitBias().entrySet()) {
            biasIds[i] = e.getKey();
            biasValues[i++] = e.getValue().floatValue();
        }
        presence = (float) params.presencePenalty();
        frequency = (float) params.frequencyPenalty();
        counts = presence != 0 || frequency != 0 ? new int[vocab] : null;
    }

    @Override
    public int sample(float[] logits, int offset, int vocab) {
        for (int i = 0; i < biasIds.length; i++) {
            logits[offset + biasIds[i]] += biasValues[i];
        }
        if (counts != null) {
            for (int t = 0; t < vocab; t++) {
                if (counts[t] > 0) {
                    logits[offset + t] -= presence + frequency * counts[t];
                }
            }
        }
        int best = 0;
        float bestLogit = logits[offset];
        for (int t = 1; t < vocab; t++) {
            if (logits[offset + t] > bestLogit) {
                bestLogit = logits[offset + t];
                best = t;
            }
        }
        if (counts != null) {
            counts[best]++;
        }
        return best;
    }
}
