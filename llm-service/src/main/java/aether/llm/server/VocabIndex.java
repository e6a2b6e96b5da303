package aether.llm.server;

import aether.llm.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.Comparator;

/**
 * Every token's bytes, computed once per tokenizer, and the ordinary (non-special, non-empty) tokens sorted by those
 * bytes with the length of the prefix each shares with the one before it. A constrained sampler walks that order to
 * mask the whole vocabulary: the bytes a run of tokens share are fed to the grammar once, and when a prefix is
 * refused every token starting with it is skipped without being looked at. Immutable; shared by all requests.
 */
final class VocabIndex {

    final byte[][] pieces;
    /** Ordinary token ids in unsigned-lexicographic order of their bytes. */
    final int[] order;
    /** {@code shared[i]}: bytes {@code order[i]} has in common with {@code order[i - 1]} (0 for the first). */
    final int[] shared;
    final int longest;
    /** Per token, {@link GrammarSampler#stringText} of its bytes: how it reads inside a plain string, or -1. */
    final int[] stringText;

    VocabIndex(Tokenizer tokenizer) {
        int n = tokenizer.vocabSize();
        pieces = new byte[n][];
        int ordinary = 0;
        int longestPiece = 0;
        boolean[] usable = new boolean[n];
        for (int id = 0; id < n; id++) {
            pieces[id] = tokenizer.tokenBytes(id);
            usable[id] = !tokenizer.isSpecial(id) && !tokenizer.isEndOfGeneration(id) && pieces[id].length > 0;
            if (usable[id]) {
                ordinary++;
                longestPiece = Math.max(longestPiece, pieces[id].length);
            }
        }
        Integer[] ids = new Integer[ordinary];
        for (int id = 0, k = 0; id < n; id++) {
            if (usable[id]) {
                ids[k++] = id;
            }
        }
        Arrays.sort(ids, Comparator.comparing((Integer id) -> pieces[id], Arrays::compareUnsigned));
        order = new int[ordinary];
        shared = new int[ordinary];
        for (int i = 0; i < ordinary; i++) {
            order[i] = ids[i];
            if (i > 0) {
                byte[] a = pieces[ids[i - 1]];
                byte[] b = pieces[ids[i]];
                int m = Arrays.mismatch(a, b);
                shared[i] = m < 0 ? a.length : m;
            }
        }
        longest = longestPiece;
        stringText = new int[n];
        for (int id = 0; id < n; id++) {
            long t = GrammarSampler.stringText(pieces[id]);
            stringText[id] = t < 0 || t > Integer.MAX_VALUE ? -1 : (int) t;
        }
    }
}
