package aether.llm.engine;

import aether.llm.arch.Architecture;
import aether.llm.arch.Numerics;
import aether.scheduler.exec.GraphExecutor;
import java.util.ArrayList;
import java.util.List;

/**
 * The smallest generation loop: the prompt in one batch (prefill), then one token per step (decode), each the argmax
 * of the last position's logits, as llama.cpp does with temperature 0 / top-k 1. No stop tokens: exactly the requested
 * number of tokens. Reports each step's top-k log-probabilities, computed in float64 from the float32 logits. Not
 * thread-safe (it reuses its {@link ForwardRunner}'s graphs).
 */
public final class GreedyGenerator {

    private final ForwardRunner runner;

    /** See {@link ForwardRunner#ForwardRunner} for {@code numerics}. */
    public GreedyGenerator(Architecture architecture, GraphExecutor executor, Numerics numerics) {
        this.runner = new ForwardRunner(architecture, executor, numerics);
    }

    public ForwardRunner runner() {
        return runner;
    }

    /**
     * Generates {@code count} tokens after {@code prompt}.
     *
     * @param topK how many log-probabilities to report per step, 1 to vocab size
     * @throws IllegalArgumentException for an empty prompt, an id outside the vocabulary, a count below 1, a topK out
     *                                  of range, or a prompt plus count longer than the model's context
     */
    public Generation generate(int[] prompt, int count, int topK) {
        int vocab = runner.architecture().config().vocabSize();
        int context = runner.architecture().config().contextLength();
        if (prompt.length == 0 || count < 1 || topK < 1 || topK > vocab) {
            throw new IllegalArgumentException("generate(prompt of " + prompt.length + " tokens, count " + count
                    + ", topK " + topK + ") (expected: a non-empty prompt, count >= 1, topK in 1.." + vocab + ")");
        }
        if ((long) prompt.length + count > context) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens plus " + count
                    + " generated exceeds the context length " + context);
        }
        // the last generated token is never fed back, so the cache holds prompt + count - 1 positions
        KvCache cache = KvCache.create(runner.architecture().config(), prompt.length + count - 1);
        int[] ids = new int[count];
        List<List<TokenLogprob>> top = new ArrayList<>(count);
        float[] logits = runner.forward(prompt, cache);
        for (int i = 0; i < count; i++) {
            List<TokenLogprob> best = topLogprobs(logits, topK);
            ids[i] = best.get(0).id();
            top.add(best);
            if (i + 1 < count) {
                logits = runner.forward(new int[] {ids[i]}, cache);
            }
        }
        return new Generation(ids, top);
    }

    /**
     * The {@code k} largest logits (descending, ties to the lower id) as log-softmax values over all logits, in float64:
     * {@code l_i - max - log(sum_j exp(l_j - max))}.
     */
    static List<TokenLogprob> topLogprobs(float[] logits, int k) {
        double max = Double.NEGATIVE_INFINITY;
        for (int id = 0; id < logits.length; id++) {
            if (Float.isNaN(logits[id])) {
                throw new IllegalStateException("logit of token " + id + " is NaN");
            }
            max = Math.max(max, logits[id]);
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        double logZ = max + Math.log(sum);
        int[] order = new int[k];
        int filled = 0;
        for (int id = 0; id < logits.length; id++) {
            // insertion into the sorted top-k; strict > keeps the lower id first on ties
            if (filled == k && !(logits[id] > logits[order[k - 1]])) {
                continue;
            }
            int at = filled < k ? filled++ : k - 1;
            while (at > 0 && logits[id] > logits[order[at - 1]]) {
                order[at] = order[at - 1];
                at--;
            }
            order[at] = id;
        }
        List<TokenLogprob> out = new ArrayList<>(k);
        for (int i = 0; i < k; i++) {
            out.add(new TokenLogprob(order[i], logits[order[i]] - logZ));
        }
        return out;
    }
}
