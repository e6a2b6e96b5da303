package aether.llm.sampling;

/**
 * Partial selection and sorting of token ids by their logits, in place, without allocating. The order is total: larger
 * logit first, and on equal logits the lower id first, so every algorithm (and llama.cpp's greedy tie rule) agrees on
 * the result and repeated runs are identical. Callers have rejected NaN logits already.
 */
final class CandidateOrder {

    private static final int INSERTION_SORT_MAX = 24;

    private CandidateOrder() {}

    /** Whether token {@code a} comes before token {@code b}. */
    static boolean before(float[] key, int a, int b) {
        float ka = key[a];
        float kb = key[b];
        return ka > kb || (ka == kb && a < b);
    }

    /**
     * Rearranges {@code idx[0..n)} so that its first {@code k} entries are the {@code k} first tokens in the order
     * (unsorted among themselves). Quickselect with a median-of-three pivot; after too many rounds (adversarial input)
     * it sorts what is left, so the worst case is O(n log n).
     */
    static void selectFirst(int[] idx, int n, int k, float[] key) {
        if (k <= 0 || k >= n) {
            return;
        }
        int target = k - 1;
        int lo = 0;
        int hi = n - 1;
        int rounds = 2 * (32 - Integer.numberOfLeadingZeros(n)) + 8;
        while (hi > lo) {
            if (rounds-- == 0) {
                sort(idx, lo, hi + 1, key);
                return;
            }
            int mid = (lo + hi) >>> 1;
            if (before(key, idx[mid], idx[lo])) {
                swap(idx, mid, lo);
            }
            if (before(key, idx[hi], idx[lo])) {
                swap(idx, hi, lo);
            }
            if (before(key, idx[hi], idx[mid])) {
                swap(idx, hi, mid);
            }
            int pivot = idx[mid];
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (before(key, idx[i], pivot)) {
                    i++;
                }
                while (before(key, pivot, idx[j])) {
                    j--;
                }
                if (i <= j) {
                    swap(idx, i, j);
                    i++;
                    j--;
                }
            }
            // [lo, j] come before or equal the pivot, [i, hi] after or equal; between them (if i == j + 2) the pivot
            if (target <= j) {
                hi = j;
            } else if (target >= i) {
                lo = i;
            } else {
                return;
            }
        }
    }

    /** Sorts {@code idx[from..to)} into the order: insertion sort when short, heapsort otherwise (no recursion). */
    static void sort(int[] idx, int from, int to, float[] key) {
        int n = to - from;
        if (n <= INSERTION_SORT_MAX) {
            for (int i = from + 1; i < to; i++) {
                int v = idx[i];
                int j = i - 1;
                while (j >= from && before(key, v, idx[j])) {
                    idx[j + 1] = idx[j];
                    j--;
                }
                idx[j + 1] = v;
            }
            return;
        }
        // a heap whose root is the LAST token in the order; popping it to the end sorts ascending in "before"
        for (int i = n / 2 - 1; i >= 0; i--) {
            siftDown(idx, from, i, n, key);
        }
        for (int end = n - 1; end > 0; end--) {
            swap(idx, from, from + end);
            siftDown(idx, from, 0, end, key);
        }
    }

    private static void siftDown(int[] idx, int base, int i, int n, float[] key) {
        int v = idx[base + i];
        while (true) {
            int child = 2 * i + 1;
            if (child >= n) {
                break;
            }
            if (child + 1 < n && before(key, idx[base + child], idx[base + child + 1])) {
                child++;                  // the later of the two children
            }
            if (!before(key, v, idx[base + child])) {
                break;
            }
            idx[base + i] = idx[base + child];
            i = child;
        }
        idx[base + i] = v;
    }

    private static void swap(int[] a, int i, int j) {
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
