package aether.llm.server;

import aether.llm.sampling.Sampler;
import aether.llm.server.SchemaGrammar.State;
import aether.llm.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Constrains sampling to the texts of a {@link SchemaGrammar} ({@code response_format: json_schema}, forced tool
 * calls). Each step first samples as usual and checks only the chosen token: its bytes must keep the output a valid
 * prefix, and the bytes it leaves to finish the document ({@link SchemaGrammar#distance}) must fit the tokens left
 * after it (one byte a token, one more for the end-of-generation token) unless it brings the end nearer. Only when
 * that token is refused is the whole vocabulary masked (walking {@link VocabIndex}'s sorted order, so shared prefixes
 * are checked once) and the sample drawn again from the unmodified logits with the mask applied: the result is
 * distributed exactly as sampling from the masked distribution (a token the first draw accepts has probability
 * p(t), plus p(refused)·p(t)/p(allowed) from the second), as llama.cpp's grammar sampler does it. End-of-generation
 * tokens are allowed only once the document is complete, and are the only tokens once nothing more may follow.
 *
 * <p>So generation always terminates with a valid document when the budget ({@code max_tokens}, or what the context
 * leaves) is at least the schema's shortest text plus one, provided the vocabulary has single-byte tokens
 * (byte-fallback and byte-level vocabularies do). A smaller budget cuts the document: finish_reason {@code length}
 * with incomplete JSON, as OpenAI's API does. Engine thread only.
 */
final class GrammarSampler implements TokenSampler {

    private final Sampler sampler;
    private final Tokenizer tokenizer;
    private final VocabIndex index;
    private final SchemaGrammar grammar;
    private final int budget;
    private final float[] saved;
    private final boolean[] allowed;
    private List<State> state;
    private int produced;
    /** Steps that needed the full mask (for tests and tuning). */
    int fullMasks;

    GrammarSampler(Sampler sampler, Tokenizer tokenizer, VocabIndex index, SchemaGrammar grammar, int budget) {
        this.sampler = sampler;
        this.tokenizer = tokenizer;
        this.index = index;
        this.grammar = grammar;
        this.budget = budget;
        this.saved = new float[index.pieces.length];
        this.allowed = new boolean[index.pieces.length];
        this.state = grammar.initial();
    }

    @Override
    public int sample(float[] logits, int offset, int vocab) {
        int left = budget - produced++;   // tokens left, this one included
        int reach = left - 2;
        int distance = SchemaGrammar.distance(state);
        boolean complete = grammar.complete(state);
        boolean finished = SchemaGrammar.finished(state);
        System.arraycopy(logits, offset, saved, 0, vocab);
        int token = sampler.sample(logits, offset);
        List<State> next = check(token, complete, finished, distance, reach);
        if (next == null) {
            System.arraycopy(saved, 0, logits, offset, vocab);
            fullMasks++;
            if (mask(logits, offset, vocab, complete, finished, distance, reach) == 0) {
                // nothing can continue (cannot happen with single-byte tokens in the vocabulary): end here
                int eos = tokenizer.specialTokens().eos();
                token = eos >= 0 ? eos : 0;
                sampler.accept(token);
                return token;
            }
            token = sampler.sample(logits, offset);
            next = check(token, complete, finished, distance, reach);
            if (next == null) {
                throw new IllegalStateException("the sampler chose masked token " + token);
            }
        }
        sampler.accept(token);
        state = next;
        return token;
    }

    /** The state after {@code token}, or null when it is not allowed. */
    private List<State> check(int token, boolean complete, boolean finished, int distance, int reach) {
        if (token < 0 || token >= index.pieces.length) {
            return null;
        }
        if (tokenizer.isEndOfGeneration(token)) {
            return complete ? state : null;
        }
        if (finished || tokenizer.isSpecial(token) || index.pieces[token].length == 0) {
            return null;
        }
        List<State> next = SchemaGrammar.feed(state, index.pieces[token]);
        if (next.isEmpty()) {
            return null;
        }
        int d = SchemaGrammar.distance(next);
        return d <= reach || d < distance ? next : null;
    }

    /** Sets every refused token's logit to -∞; returns how many remain. */
    private int mask(float[] logits, int offset, int vocab, boolean complete, boolean finished, int distance,
            int reach) {
        java.util.Arrays.fill(allowed, false);
        int count = 0;
        if (!finished) {
            int[] order = index.order;
            @SuppressWarnings("unchecked")
            List<State>[] levels = new List[index.longest + 1];
            levels[0] = state;
            int dead = Integer.MAX_VALUE;   // prefix length whose state set is empty on the current path
            int fed = 0;                    // levels[0..fed] hold the current path's state sets
            // inside a plain string most tokens fit: a token of plain text is priced without parsing it
            SchemaGrammar.Str str = null;
            int belowRest = 0;
            if (state.size() == 1 && state.getFirst().top() instanceof SchemaGrammar.Str s0 && s0.pending() == 0
                    && s0.escape() == 0 && s0.hex() == 0) {
                str = s0;
                belowRest = SchemaGrammar.distance(state) - (Math.max(0, s0.node().minLength - s0.count()) + 1);
            }
            for (int i = 0; i < order.length; i++) {
                int t = order[i];
                byte[] p = index.pieces[t];
                int common = i == 0 ? 0 : index.shared[i];
                if (common >= dead) {
                    continue;   // starts with a refused prefix
                }
                dead = Integer.MAX_VALUE;
                int text = str == null ? -1 : index.stringText[t];
                if (text >= 0) {
                    int chars = str.count() + (int) (text >>> 8);
                    int after = (int) (text & 0xff) + Math.max(0, str.node().minLength - chars) + 1 + belowRest;
                    if (chars <= str.node().maxLength && (after <= reach || after < distance)) {
                        allowed[t] = true;
                        count++;
                    }
                    fed = Math.min(fed, common);   // levels past the shared prefix were not computed for this one
                    continue;
                }
                int d = Math.min(common, fed);
                while (d < p.length) {
                    List<State> s = SchemaGrammar.feed(levels[d], p[d] & 0xff);
                    levels[++d] = s;
                    if (s.isEmpty()) {
                        dead = d;
                        break;
                    }
                }
                fed = d;
                if (dead == Integer.MAX_VALUE) {
                    int after = SchemaGrammar.distance(levels[p.length]);
                    if (after <= reach || after < distance) {
                        allowed[t] = true;
                        count++;
                    }
                }
            }
        }
        if (complete) {
            for (int t = 0; t < vocab; t++) {
                if (tokenizer.isEndOfGeneration(t)) {
                    allowed[t] = true;
                    count++;
                }
            }
        }
        for (int t = 0; t < vocab; t++) {
            if (!allowed[t]) {
                logits[offset + t] = Float.NEGATIVE_INFINITY;
            }
        }
        return count;
    }

    /**
     * A token read inside a plain string (no escape or character pending): the code points it starts (bits 8 and up)
     * and the UTF-8 continuation bytes it leaves due (low byte), or -1 when it ends the string, escapes, holds a
     * control byte or is not UTF-8 (RFC 3629, as {@link SchemaGrammar} checks it); those take the general path.
     */
    static long stringText(byte[] p) {
        int chars = 0;
        int pending = 0;
        int lo = 0x80;
        int hi = 0xbf;
        for (byte x : p) {
            int c = x & 0xff;
            if (pending > 0) {
                if (c < lo || c > hi) {
                    return -1;
                }
                pending--;
                lo = 0x80;
                hi = 0xbf;
                continue;
            }
            if (c < 0x20 || c == '"' || c == '\\') {
                return -1;
            }
            chars++;
            if (c < 0x80) {
                continue;
            }
            if (c >= 0xc2 && c <= 0xdf) {
                pending = 1;
            } else if (c == 0xe0) {
                pending = 2;
                lo = 0xa0;
            } else if (c == 0xed) {
                pending = 2;
                hi = 0x9f;
            } else if (c >= 0xe1 && c <= 0xef) {
                pending = 2;
            } else if (c == 0xf0) {
                pending = 3;
                lo = 0x90;
            } else if (c >= 0xf1 && c <= 0xf3) {
                pending = 3;
            } else if (c == 0xf4) {
                pending = 3;
                hi = 0x8f;
            } else {
                return -1;
            }
        }
        return (long) chars << 8 | pending;
    }

    /** Continues from {@code text} as if the sampler had produced it (tests and benchmarks). */
    void prime(String text) {
        state = SchemaGrammar.feed(state, text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    List<State> state() {
        return state;
    }

    void state(List<State> s, int producedSoFar) {
        state = s;
        produced = producedSoFar;
    }

    /** The allowed next tokens in the current state (tests). */
    List<Integer> allowedTokens(int tokensLeft) {
        float[] logits = new float[index.pieces.length];
        int saveProduced = produced;
        produced = budget - tokensLeft;
        int left = budget - produced;
        mask(logits, 0, logits.length, grammar.complete(state), SchemaGrammar.finished(state),
                SchemaGrammar.distance(state), left - 2);
        produced = saveProduced;
        var out = new ArrayList<Integer>();
        for (int t = 0; t < logits.length; t++) {
            if (logits[t] == 0f) {
                out.add(t);
            }
        }
        return out;
    }
}
