package aether.llm.server;

import aether.llm.server.GenerationListener.GeneratedToken;

/** Log-probabilities from one step's raw logits, in float64 (log-softmax over the whole vocabulary). */
final class Logprobs {

    static final int[] NO_IDS = new int[0];
    static final double[] NO_VALUES = new double[0];

    private Logprobs() {}

    /** The chosen token's log-probability and the {@code top} most likely tokens (descending, ties to the lower id). */
    static GeneratedToken of(float[] logits, int chosen, int top) {
        int vocab = logits.length;
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        double logZ = max + Math.log(sum);
        int k = Math.min(top, vocab);
        int[] ids = new int[k];
        int filled = 0;
        for (int id = 0; id < vocab && k > 0; id++) {
            if (filled == k && !(logits[id] > logits[ids[k - 1]])) {
                continue;
            }
            int at = filled < k ? filled++ : k - 1;
            while (at > 0 && logits[id] > logits[ids[at - 1]]) {
                ids[at] = ids[at - 1];
                at--;
            }
            ids[at] = id;
        }
        double[] values = new double[k];
        for (int i = 0; i < k; i++) {
            values[i] = logits[ids[i]] - logZ;
        }
        return new GeneratedToken(chosen, logits[chosen] - logZ, ids, values);
    }

    /**
     * {@link #of(float[], int, int)} from row {@code row} of sampling candidates of the raw logits (no adjustments):
     * the top entries are the first candidates and the normaliser is their row's {@code expSum}, which is the sum
     * above (on a device: in another order, ~1e-12 relative). {@code chosen} must be a candidate or the row's drawn
     * token ({@link aether.llm.sampling.Candidates#drawnId}), and {@code min(top, vocab)} at most the row's width.
     */
    static GeneratedToken of(aether.llm.sampling.Candidates c, int row, int chosen, int top, int vocab) {
        double max = c.value(row, 0);
        double logZ = max + Math.log(c.expSum(row));
        int k = Math.min(top, vocab);
        int[] ids = new int[k];
        double[] values = new double[k];
        for (int i = 0; i < k; i++) {
            ids[i] = c.id(row, i);
            values[i] = c.value(row, i) - logZ;
        }
        for (int i = 0; i < c.width(row); i++) {
            if (c.id(row, i) == chosen) {
                return new GeneratedToken(chosen, c.value(row, i) - logZ, ids, values);
            }
        }
        if (c.drawnId(row) == chosen) {   // a draw over the whole row may pick a token past the candidates
            return new GeneratedToken(chosen, c.drawnValue(row) - logZ, ids, values);
        }
        throw new IllegalStateException("token " + chosen + " is neither a candidate nor the drawn token of row " + row);
    }
}
