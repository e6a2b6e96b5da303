package aether.llm.cli;

import aether.llm.sampling.SamplerConfig;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import picocli.CommandLine.Option;

/** Sampling options of {@code run} and {@code chat}, with llama.cpp's names and defaults. */
public final class SamplingOptions {

    @Option(names = "--temp", paramLabel = "T", defaultValue = "0.8",
            description = "temperature; 0 = greedy (default: ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "40", description = "top-k; 0 = off (default: ${DEFAULT-VALUE})")
    int topK;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "0.95", description = "top-p; 1 = off (default: ${DEFAULT-VALUE})")
    float topP;

    @Option(names = "--min-p", paramLabel = "P", defaultValue = "0.05", description = "min-p; 0 = off (default: ${DEFAULT-VALUE})")
    float minP;

    @Option(names = "--repeat-penalty", paramLabel = "X", defaultValue = "1.0",
            description = "penalty for tokens in the last --repeat-last-n; 1 = off (default: ${DEFAULT-VALUE})")
    float repeatPenalty;

    @Option(names = "--repeat-last-n", paramLabel = "N", defaultValue = "64",
            description = "tokens the penalties look back at (default: ${DEFAULT-VALUE})")
    int repeatLastN;

    @Option(names = "--presence-penalty", paramLabel = "X", defaultValue = "0", description = "(default: ${DEFAULT-VALUE})")
    float presencePenalty;

    @Option(names = "--frequency-penalty", paramLabel = "X", defaultValue = "0", description = "(default: ${DEFAULT-VALUE})")
    float frequencyPenalty;

    @Option(names = {"-l", "--logit-bias"}, paramLabel = "ID(+|-)BIAS",
            description = "add BIAS to token ID's logit, e.g. 15043+1, 15043-0.5 or 15043-inf (bans it); repeatable")
    List<String> logitBias = List.of();

    @Option(names = {"-s", "--seed"}, paramLabel = "S",
            description = "random seed; the same seed repeats a run exactly (default: a random seed, printed)")
    Long seed;

    /** The seed: {@code --seed}, or a fresh random one (the caller prints it). */
    long seedOrRandom() {
        return seed != null ? seed : new SplittableRandom().nextLong() >>> 1;
    }

    /** @throws IllegalArgumentException for values out of range or a malformed {@code --logit-bias} */
    SamplerConfig config(long chosenSeed) {
        return new SamplerConfig(temperature, topK, topP, minP, repeatPenalty, presencePenalty, frequencyPenalty,
                repeatLastN, parseBias(logitBias), chosenSeed);
    }

    static Map<Integer, Float> parseBias(List<String> specs) {
        Map<Integer, Float> bias = new HashMap<>();
        for (String spec : specs) {
            int sign = 0;
            while (sign < spec.length() && spec.charAt(sign) != '+' && spec.charAt(sign) != '-') {
                sign++;
            }
            try {
                if (sign == 0 || sign == spec.length()) {
                    throw new NumberFormatException();
                }
                int id = Integer.parseInt(spec.substring(0, sign));
                String value = spec.substring(sign);
                float b = value.equalsIgnoreCase("-inf") ? Float.NEGATIVE_INFINITY : Float.parseFloat(value);
                if (!Float.isFinite(b) && b != Float.NEGATIVE_INFINITY) {
                    throw new NumberFormatException();
                }
                bias.merge(id, b, Float::sum);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--logit-bias " + spec
                        + " (expected TOKEN_ID followed by +BIAS or -BIAS, e.g. 15043+1 or 15043-inf)");
            }
        }
        return bias;
    }
}
