package aether.llm.tokenizer;

/**
 * Open-addressing map from a pair of piece ids (packed in a long) to the rank of the BPE merge of that pair. The first
 * rank put for a pair wins, as with llama.cpp's {@code bpe_ranks.emplace}. Lookups are thread-safe once built.
 */
final class PairRanks {

    private static final long EMPTY = -1L;

    private long[] keys;
    private int[] ranks;
    private int size;

    PairRanks(int expected) {
        int capacity = Integer.highestOneBit(Math.max(16, expected) * 2 - 1) << 1;
        keys = new long[capacity];
        ranks = new int[capacity];
        java.util.Arrays.fill(keys, EMPTY);
    }

    static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    void putIfAbsent(int left, int right, int rank) {
        if ((size + 1) * 2 > keys.length) {
            grow();
        }
        long key = key(left, right);
        int mask = keys.length - 1;
        int slot = mix(key) & mask;
        while (keys[slot] != EMPTY) {
            if (keys[slot] == key) {
                return;
            }
            slot = (slot + 1) & mask;
        }
        keys[slot] = key;
        ranks[slot] = rank;
        size++;
    }

    /** The rank of merging {@code left} and {@code right}, or -1. */
    int get(int left, int right) {
        long key = key(left, right);
        int mask = keys.length - 1;
        int slot = mix(key) & mask;
        while (true) {
            long k = keys[slot];
            if (k == key) {
                return ranks[slot];
            }
            if (k == EMPTY) {
                return -1;
            }
            slot = (slot + 1) & mask;
        }
    }

    private void grow() {
        long[] oldKeys = keys;
        int[] oldRanks = ranks;
        keys = new long[oldKeys.length * 2];
        ranks = new int[oldKeys.length * 2];
        java.util.Arrays.fill(keys, EMPTY);
        int mask = keys.length - 1;
        for (int i = 0; i < oldKeys.length; i++) {
            if (oldKeys[i] != EMPTY) {
                int slot = mix(oldKeys[i]) & mask;
                while (keys[slot] != EMPTY) {
                    slot = (slot + 1) & mask;
                }
                keys[slot] = oldKeys[i];
                ranks[slot] = oldRanks[i];
            }
        }
    }

    private static int mix(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29) ^ (h >>> 32));
    }
}
