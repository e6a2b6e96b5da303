package aether.llm.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * SentencePiece-style tokenizer ({@code tokenizer.ggml.model = llama}), a port of llama.cpp's
 * {@code llm_tokenizer_spm_session}: spaces become {@code ▁}, the text starts as one symbol per UTF-8 character, and
 * the adjacent pair whose concatenation is the highest-scoring vocabulary token is merged first (ties: leftmost),
 * through a priority queue, until no pair forms a token. Symbols that are not tokens fall back to byte tokens
 * {@code <0xAB>}.
 */
final class SpmTokenizer extends Tokenizer {

    private static final byte[] SPACE_MARK = "\u2581".getBytes(StandardCharsets.UTF_8);

    /** Token of each byte for byte fallback, -1 where the vocabulary has none. */
    private final int[] byteTokens = new int[256];

    SpmTokenizer(Vocabulary vocab) {
        super(vocab);
        for (int b = 0; b < 256; b++) {
            byte[] hex = "<0x%02X>".formatted(b).getBytes(StandardCharsets.US_ASCII);
            int id = vocab.index.get(hex, 0, hex.length);
            if (id < 0) {
                id = vocab.index.get(new byte[] {(byte) b}, 0, 1);
            }
            byteTokens[b] = id;
        }
    }

    @Override
    void encode(String text, Fragments fragments, boolean addSpecial, IntList out) {
        boolean previousSpecial = true; // the first text fragment gets the space prefix too
        if (addSpecial && vocab.addBos) {
            out.add(vocab.special.bos());
        }
        Session session = null;
        for (int f = 0; f < fragments.size(); f++) {
            int token = fragments.token.get(f);
            if (token >= 0) {
                out.add(token);
                previousSpecial = true;
                continue;
            }
            int from = fragments.offset.get(f);
            byte[] utf8 = Unicode.utf8(text, from, from + fragments.length.get(f));
            if (vocab.addSpacePrefix && previousSpecial) {
                byte[] prefixed = new byte[utf8.length + 1];
                prefixed[0] = ' ';
                System.arraycopy(utf8, 0, prefixed, 1, utf8.length);
                utf8 = prefixed;
            }
            if (session == null) {
                session = new Session();
            }
            session.tokenize(escapeSpaces(utf8), out);
            previousSpecial = false;
        }
        if (addSpecial && vocab.addEos) {
            out.add(vocab.special.eos());
        }
    }

    private static byte[] escapeSpaces(byte[] utf8) {
        int spaces = 0;
        for (byte b : utf8) {
            spaces += b == ' ' ? 1 : 0;
        }
        if (spaces == 0) {
            return utf8;
        }
        byte[] out = new byte[utf8.length + spaces * 2];
        int p = 0;
        for (byte b : utf8) {
            if (b == ' ') {
                out[p++] = SPACE_MARK[0];
                out[p++] = SPACE_MARK[1];
                out[p++] = SPACE_MARK[2];
            } else {
                out[p++] = b;
            }
        }
        return out;
    }

    /** Working arrays for one call; symbols are byte ranges of the escaped text linked into a list. */
    private final class Session {
        private int[] start = new int[64];
        private int[] length = new int[64];
        private int[] prev = new int[64];
        private int[] next = new int[64];
        // the work queue: a binary max-heap on (score, then smaller left index)
        private float[] qScore = new float[64];
        private int[] qLeft = new int[64];
        private int[] qRight = new int[64];
        private int[] qSize = new int[64];
        private int qCount;
        private byte[] text;

        void tokenize(byte[] text, IntList out) {
            this.text = text;
            int count = 0;
            for (int offset = 0; offset < text.length; ) {
                int len = Math.min(Unicode.utf8Length(text[offset]), text.length - offset);
                ensureSymbols(count + 1);
                start[count] = offset;
                length[count] = len;
                prev[count] = count - 1;
                offset += len;
                next[count] = offset == text.length ? -1 : count + 1;
                count++;
            }
            if (count == 0) {
                return;
            }
            qCount = 0;
            for (int i = 1; i < count; i++) {
                tryAddBigram(i - 1, i);
            }
            while (qCount > 0) {
                int left = qLeft[0];
                int right = qRight[0];
                int size = qSize[0];
                pop();
                if (length[left] == 0 || length[right] == 0 || length[left] + length[right] != size) {
                    continue; // one side was merged since this pair was queued
                }
                length[left] += length[right];
                length[right] = 0;
                next[left] = next[right];
                if (next[right] >= 0) {
                    prev[next[right]] = left;
                }
                tryAddBigram(prev[left], left);
                tryAddBigram(left, next[left]);
            }
            for (int i = 0; i != -1; i = next[i]) {
                int id = vocab.index.get(text, start[i], length[i]);
                if (id >= 0) {
                    out.add(id);
                    continue;
                }
                // merged symbols are always tokens, so only single characters get here
                for (int j = start[i]; j < start[i] + length[i]; j++) {
                    int byteToken = byteTokens[text[j] & 0xFF];
                    // llama.cpp throws when a vocabulary has no token for a byte; the unknown token is used here
                    out.add(byteToken >= 0 ? byteToken : vocab.special.unk());
                }
            }
        }

        private void tryAddBigram(int left, int right) {
            if (left == -1 || right == -1) {
                return;
            }
            int size = length[left] + length[right];
            int id = vocab.index.get(text, start[left], size);
            if (id < 0) {
                return;
            }
            push(vocab.scores[id], left, right, size);
        }

        private boolean before(int a, int b) {
            return qScore[a] > qScore[b] || (qScore[a] == qScore[b] && qLeft[a] < qLeft[b]);
        }

        private void push(float score, int left, int right, int size) {
            if (qCount == qScore.length) {
                int n = qCount * 2;
                qScore = Arrays.copyOf(qScore, n);
                qLeft = Arrays.copyOf(qLeft, n);
                qRight = Arrays.copyOf(qRight, n);
                qSize = Arrays.copyOf(qSize, n);
            }
            int i = qCount++;
            set(i, score, left, right, size);
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (!before(i, parent)) {
                    break;
                }
                swap(i, parent);
                i = parent;
            }
        }

        private void pop() {
            qCount--;
            if (qCount == 0) {
                return;
            }
            set(0, qScore[qCount], qLeft[qCount], qRight[qCount], qSize[qCount]);
            int i = 0;
            while (true) {
                int l = 2 * i + 1;
                if (l >= qCount) {
                    break;
                }
                int best = l + 1 < qCount && before(l + 1, l) ? l + 1 : l;
                if (!before(best, i)) {
                    break;
                }
                swap(i, best);
                i = best;
            }
        }

        private void set(int i, float score, int left, int right, int size) {
            qScore[i] = score;
            qLeft[i] = left;
            qRight[i] = right;
            qSize[i] = size;
        }

        private void swap(int a, int b) {
            float s = qScore[a];
            int l = qLeft[a], r = qRight[a], z = qSize[a];
            set(a, qScore[b], qLeft[b], qRight[b], qSize[b]);
            set(b, s, l, r, z);
        }

        private void ensureSymbols(int n) {
            if (n > start.length) {
                int size = Math.max(n, start.length * 2);
                start = Arrays.copyOf(start, size);
                length = Arrays.copyOf(length, size);
                prev = Arrays.copyOf(prev, size);
                next = Arrays.copyOf(next, size);
            }
        }
    }
}
