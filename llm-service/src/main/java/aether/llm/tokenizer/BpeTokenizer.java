package aether.llm.tokenizer;

import aether.llm.gguf.GgufArray;
import java.util.Arrays;

/**
 * GPT-2 style byte-level BPE ({@code tokenizer.ggml.model = gpt2}), a port of llama.cpp's
 * {@code llm_tokenizer_bpe_session}. Text is split into words by the pre-tokenizer regexes of
 * {@code tokenizer.ggml.pre}; each word's UTF-8 bytes are mapped to GPT-2's byte characters and merged pairwise,
 * lowest merge rank first (ties: leftmost), through a priority queue.
 *
 * <p>Merges work on interned "pieces" rather than strings: every vocabulary token is a piece (same id), and so is
 * every side and result of a merge; a merge is then a lookup of two ints, and a queued pair is stale when either
 * symbol's piece has changed, which is exactly when llama.cpp's string comparison fails.
 */
final class BpeTokenizer extends Tokenizer {

    private final RegexSplitter splitter;
    private final PairRanks ranks;
    /** Piece produced by each merge rank. */
    private final int[] mergeResult;
    /** Pieces that are not vocabulary tokens get ids from {@code vocab.size()} upwards. */
    private final ByteSequenceIndex extraPieces;
    /** Piece of each byte's GPT-2 character, -1 if it is neither a token nor part of a merge. */
    private final int[] bytePiece = new int[256];

    BpeTokenizer(Vocabulary vocab, GgufArray merges) {
        super(vocab);
        splitter = new RegexSplitter(vocab.pre.expressions());
        int n = merges.intSize();
        ranks = new PairRanks(n);
        mergeResult = new int[n];
        extraPieces = new ByteSequenceIndex(1024);
        for (int rank = 0; rank < n; rank++) {
            byte[] merge = merges.stringBytesAt(rank);
            int space = -1;
            for (int i = 1; i < merge.length; i++) {
                if (merge[i] == ' ') {
                    space = i;
                    break;
                }
            }
            if (space < 0) {
                mergeResult[rank] = -1; // llama.cpp records an empty pair, which never matches
                continue;
            }
            int left = internPiece(Arrays.copyOfRange(merge, 0, space));
            int right = internPiece(Arrays.copyOfRange(merge, space + 1, merge.length));
            byte[] joined = new byte[merge.length - 1];
            System.arraycopy(merge, 0, joined, 0, space);
            System.arraycopy(merge, space + 1, joined, space, merge.length - space - 1);
            mergeResult[rank] = internPiece(joined);
            ranks.putIfAbsent(left, right, rank);
        }
        for (int b = 0; b < 256; b++) {
            byte[] c = ByteUnicode.encode(b);
            bytePiece[b] = piece(c, 0, c.length);
        }
    }

    private int internPiece(byte[] bytes) {
        int id = vocab.index.get(bytes, 0, bytes.length);
        return id >= 0 ? id : extraPieces.putIfAbsent(bytes, vocab.size() + extraPieces.size());
    }

    private int piece(byte[] bytes, int from, int length) {
        int id = vocab.index.get(bytes, from, length);
        return id >= 0 ? id : extraPieces.get(bytes, from, length);
    }

    @Override
    void encode(String text, Fragments fragments, boolean addSpecial, IntList out) {
        if (addSpecial && vocab.addBos) {
            out.add(vocab.special.bos());
        }
        Session session = null;
        for (int f = 0; f < fragments.size(); f++) {
            int token = fragments.token.get(f);
            if (token >= 0) {
                out.add(token);
                continue;
            }
            if (session == null) {
                session = new Session();
            }
            int from = fragments.offset.get(f);
            session.tokenize(Unicode.codePoints(text, from, from + fragments.length.get(f)), out);
        }
        if (addSpecial && vocab.addEos) {
            out.add(vocab.special.eos());
        }
    }

    /** Working arrays for one call. */
    private final class Session {
        private byte[] encoded = new byte[256];
        private int[] start = new int[64];
        private int[] length = new int[64];
        private int[] piece = new int[64];
        private int[] prev = new int[64];
        private int[] next = new int[64];
        // work queue: binary min-heap on (rank, left)
        private int[] qRank = new int[64];
        private int[] qLeft = new int[64];
        private int[] qRight = new int[64];
        private int[] qLeftPiece = new int[64];
        private int[] qRightPiece = new int[64];
        private int qCount;
        private final byte[] utf8 = new byte[4];

        void tokenize(int[] cpts, IntList out) {
            IntList words = splitter.split(cpts);
            int cp = 0;
            for (int w = 0; w < words.size(); w++) {
                int wordEnd = cp + words.get(w);
                int count = 0;
                int encodedLength = 0;
                for (; cp < wordEnd; cp++) {
                    int len = Unicode.putUtf8(utf8, 0, cpts[cp]);
                    for (int k = 0; k < len; k++) {
                        int b = utf8[k] & 0xFF;
                        byte[] c = ByteUnicode.encode(b);
                        ensureEncoded(encodedLength + c.length);
                        ensureSymbols(count + 1);
                        System.arraycopy(c, 0, encoded, encodedLength, c.length);
                        start[count] = encodedLength;
                        length[count] = c.length;
                        piece[count] = bytePiece[b];
                        prev[count] = count - 1;
                        next[count] = count + 1;
                        encodedLength += c.length;
                        count++;
                    }
                }
                if (count == 0) {
                    continue;
                }
                next[count - 1] = -1;
                if (vocab.pre.ignoreMerges) {
                    int whole = vocab.index.get(encoded, 0, encodedLength);
                    if (whole >= 0) {
                        out.add(whole);
                        continue;
                    }
                }
                merge(count);
                emit(out);
            }
        }

        private void merge(int count) {
            qCount = 0;
            for (int i = 1; i < count; i++) {
                addBigram(i - 1, i);
            }
            while (qCount > 0) {
                int rank = qRank[0];
                int left = qLeft[0];
                int right = qRight[0];
                int leftPiece = qLeftPiece[0];
                int rightPiece = qRightPiece[0];
                pop();
                if (length[left] == 0 || length[right] == 0 || piece[left] != leftPiece
                        || piece[right] != rightPiece) {
                    continue; // outdated pair
                }
                length[left] += length[right];
                length[right] = 0;
                piece[left] = mergeResult[rank];
                next[left] = next[right];
                if (next[right] >= 0) {
                    prev[next[right]] = left;
                }
                addBigram(prev[left], left);
                addBigram(left, next[left]);
            }
        }

        private void emit(IntList out) {
            for (int i = 0; i != -1; i = next[i]) {
                int p = piece[i];
                if (p >= 0 && p < vocab.size()) {
                    out.add(p);
                    continue;
                }
                // not a token: llama.cpp looks up each byte of the mapped text as a one-byte token, skipping misses
                for (int j = start[i]; j < start[i] + length[i]; j++) {
                    int id = vocab.index.get(encoded, j, 1);
                    if (id >= 0) {
                        out.add(id);
                    }
                }
            }
        }

        private void addBigram(int left, int right) {
            if (left == -1 || right == -1) {
                return;
            }
            int l = piece[left];
            int r = piece[right];
            if (l < 0 || r < 0) {
                return;
            }
            int rank = ranks.get(l, r);
            if (rank < 0) {
                return;
            }
            push(rank, left, right, l, r);
        }

        private boolean before(int a, int b) {
            return qRank[a] < qRank[b] || (qRank[a] == qRank[b] && qLeft[a] < qLeft[b]);
        }

        private void push(int rank, int left, int right, int leftPiece, int rightPiece) {
            if (qCount == qRank.length) {
                int n = qCount * 2;
                qRank = Arrays.copyOf(qRank, n);
                qLeft = Arrays.copyOf(qLeft, n);
                qRight = Arrays.copyOf(qRight, n);
                qLeftPiece = Arrays.copyOf(qLeftPiece, n);
                qRightPiece = Arrays.copyOf(qRightPiece, n);
            }
            int i = qCount++;
            set(i, rank, left, right, leftPiece, rightPiece);
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
            set(0, qRank[qCount], qLeft[qCount], qRight[qCount], qLeftPiece[qCount], qRightPiece[qCount]);
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

        private void set(int i, int rank, int left, int right, int leftPiece, int rightPiece) {
            qRank[i] = rank;
            qLeft[i] = left;
            qRight[i] = right;
            qLeftPiece[i] = leftPiece;
            qRightPiece[i] = rightPiece;
        }

        private void swap(int a, int b) {
            int rank = qRank[a], l = qLeft[a], r = qRight[a], lp = qLeftPiece[a], rp = qRightPiece[a];
            set(a, qRank[b], qLeft[b], qRight[b], qLeftPiece[b], qRightPiece[b]);
            set(b, rank, l, r, lp, rp);
        }

        private void ensureEncoded(int n) {
            if (n > encoded.length) {
                encoded = Arrays.copyOf(encoded, Math.max(n, encoded.length * 2));
            }
        }

        private void ensureSymbols(int n) {
            if (n > start.length) {
                int size = Math.max(n, start.length * 2);
                start = Arrays.copyOf(start, size);
                length = Arrays.copyOf(length, size);
                piece = Arrays.copyOf(piece, size);
                prev = Arrays.copyOf(prev, size);
                next = Arrays.copyOf(next, size);
            }
        }
    }
}
