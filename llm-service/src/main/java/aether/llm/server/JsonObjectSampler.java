package aether.llm.server;

import aether.llm.tokenizer.Tokenizer;

/**
 * Constrains another sampler to output one JSON object: before each choice, every token whose bytes cannot continue
 * the JSON so far is masked (logit -∞), special tokens always, end-of-generation tokens until the object is complete;
 * once it is complete only end-of-generation tokens remain. A token is also masked when the bytes it leaves to close
 * the object ({@link JsonPrefix#distance()}) exceed the token budget ({@code max_tokens}, or what the context leaves)
 * after it, less one for the end-of-generation token; when that is tight only tokens that close in remain. So the
 * object closes and ends within the budget whenever the vocabulary has single-byte tokens (byte-fallback and
 * byte-level vocabularies do). Engine thread only.
 */
final class JsonObjectSampler implements TokenSampler {

    private final TokenSampler inner;
    private final Tokenizer tokenizer;
    private final byte[][] pieces;
    private final JsonPrefix state = new JsonPrefix();
    private final JsonPrefix trial = new JsonPrefix();
    private final int budget;
    private int produced;

    /**
     * @param pieces each token's bytes (shared, read-only), see {@link #pieces(Tokenizer)}
     * @param budget tokens this sampler will be asked for at most
     */
    JsonObjectSampler(TokenSampler inner, Tokenizer tokenizer, byte[][] pieces, int budget) {
        this.inner = inner;
        this.tokenizer = tokenizer;
        this.pieces = pieces;
        this.budget = budget;
    }

    static byte[][] pieces(Tokenizer tokenizer) {
        byte[][] out = new byte[tokenizer.vocabSize()][];
        for (int id = 0; id < out.length; id++) {
            out[id] = tokenizer.tokenBytes(id);
        }
        return out;
    }

    @Override
    public int sample(float[] logits, int offset, int vocab) {
        boolean done = state.complete();
        int distance = state.distance();
        int left = budget - produced++;   // tokens left, this one included
        // a token may take the object at most as far from complete as the tokens left after it can close (one byte
        // a token, one more for the end-of-generation token); once that is tight, only tokens that close in
        int reach = left - 2;
        int allowed = 0;
        for (int t = 0; t < vocab; t++) {
            boolean ok;
            if (tokenizer.isEndOfGeneration(t)) {
                ok = done;
            } else if (done || tokenizer.isSpecial(t) || pieces[t].length == 0) {
                ok = false;
            } else {
                trial.copyFrom(state);
                ok = trial.feed(pieces[t]) && (trial.distance() <= reach || trial.distance() < distance);
            }
            if (ok) {
                allowed++;
            } else {
                logits[offset + t] = Float.NEGATIVE_INFINITY;
            }
        }
        if (allowed == 0) {
            // nothing can continue (e.g. nesting at the limit with no closing token): end here
            int eos = tokenizer.specialTokens().eos();
            return eos >= 0 ? eos : 0;
        }
        int token = inner.sample(logits, offset, vocab);
        if (!tokenizer.isEndOfGeneration(token)) {
            state.feed(pieces[token]);
        }
        return token;
    }
}
