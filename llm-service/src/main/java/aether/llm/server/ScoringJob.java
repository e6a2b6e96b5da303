package aether.llm.server;

import aether.llm.engine.InferenceModel;
import aether.llm.server.GenerationListener.GeneratedToken;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The log-probability of every prompt token given the tokens before it (what {@code echo} with {@code logprobs} shows
 * for the prompt): the logits of position t score token t + 1, so the prompt's last token is not run (its row would
 * score the first generated token, which the generation does itself). The first token has no probability
 * ({@link Double#NaN}, null in the response).
 */
final class ScoringJob extends PromptJob<List<List<GeneratedToken>>> {

    private final int top;
    private final List<List<GeneratedToken>> scores = new ArrayList<>();

    /**
     * @param prompts prompts of 2+ tokens each
     * @param top     alternatives per token (0..20)
     */
    ScoringJob(int[][] prompts, int top) {
        super(prompts, InferenceModel.Output.ALL_LOGITS);
        this.top = top;
        for (int[] p : prompts) {
            if (p.length < 2) {
                throw new IllegalArgumentException("scoring a prompt of " + p.length + " token (expected 2+)");
            }
            scores.add(new ArrayList<>(p.length));
        }
        for (int i = 0; i < prompts.length; i++) {
            restart(i);
        }
    }

    @Override
    int tokens(int i) {
        return input(i).length - 1;
    }

    @Override
    void accept(int input, float[] out, int offset, int count, int width) {
        int[] p = input(input);
        List<GeneratedToken> s = scores.get(input);
        for (int r = 0; r < count; r++) {
            int next = p[fed[input] + r + 1];
            float[] row = Arrays.copyOfRange(out, offset + r * width, offset + (r + 1) * width);
            s.add(Logprobs.of(row, next, top));
        }
    }

    @Override
    void restart(int input) {
        List<GeneratedToken> s = scores.get(input);
        s.clear();
        s.add(new GeneratedToken(input(input)[0], Double.NaN, Logprobs.NO_IDS, Logprobs.NO_VALUES));
    }

    @Override
    List<List<GeneratedToken>> finish() {
        return List.copyOf(scores);
    }
}
