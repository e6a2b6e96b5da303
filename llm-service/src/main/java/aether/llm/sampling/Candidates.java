package aether.llm.sampling;

import java.util.Arrays;
import java.util.Objects;

/**
 * The sampling candidates of some logits rows: per row, the {@link #K} first tokens of the adjusted logits (logits
 * after a {@link LogitAdjustments}) in the sampler's order (larger value first, equal values: lower id first), their
 * adjusted values, {@code sum exp((double) v - max)} over the whole adjusted row (the normaliser of top-p without
 * top-k and of log-probabilities), and a flag for a NaN or +Infinity in the raw or adjusted row. A sampler decides its
 * token from these when it can do so exactly ({@link Sampler#candidatesDecide}); a GPU engine computes them on the
 * device ({@code sample_candidates}) so that only about 0.5 KB of a row leaves it, and {@link #computeOnHost} is the
 * same computation from a logits row, for engines that have the row on the host (the CPU engine) and for tests.
 *
 * <p>A reusable holder of a fixed number of rows. Not thread-safe.
 */
public final class Candidates {

    /** Candidates per row; the device kernel's {@code CAND_K} (CudaKernels.CANDIDATES_K) must be the same. */
    public static final int K = 64;
    /** Words per row of the device layout: K ids, K value bits, a double sum (low word first), flag, width. */
    public static final int DEVICE_WORDS = 2 * K + 4;

    private final int rows;
    private final int[] ids;
    private final float[] values;
    private final double[] expSums;
    private final boolean[] flagged;
    private final int[] widths;
    /** Scratch of {@link #computeOnHost}, sized for the last vocabulary it saw. */
    private float[] work = new float[0];
    private int[] index = new int[0];

    public Candidates(int rows) {
        if (rows < 1) {
            throw new IllegalArgumentException("candidates for " + rows + " rows (expected 1+)");
        }
        this.rows = rows;
        this.ids = new int[rows * K];
        this.values = new float[rows * K];
        this.expSums = new double[rows];
        this.flagged = new boolean[rows];
        this.widths = new int[rows];
    }

    /** Rows this holder has room for. */
    public int rows() {
        return rows;
    }

    /** Candidates in row {@code row}: {@code min(K, vocab)}. */
    public int width(int row) {
        return widths[row];
    }

    /** The i-th candidate's token id (i below {@link #width}). */
    public int id(int row, int i) {
        Objects.checkIndex(i, widths[row]);
        return ids[row * K + i];
    }

    /** The i-th candidate's adjusted logit. */
    public float value(int row, int i) {
        Objects.checkIndex(i, widths[row]);
        return values[row * K + i];
    }

    /** {@code sum exp((double) v - max)} over the whole adjusted row, max its largest value. */
    public double expSum(int row) {
        return expSums[row];
    }

    /** Whether the row held NaN or +Infinity (raw or adjusted): nothing here is meaningful then. */
    public boolean flagged(int row) {
        return flagged[row];
    }

    /**
     * Computes row {@code row} from {@code logits[offset, offset + vocab)} (not modified) and {@code adjustments}:
     * what the device kernel computes, with the sum in id order.
     */
    public void computeOnHost(float[] logits, int offset, int vocab, LogitAdjustments adjustments, int row) {
        computeOnHost(logits, offset, vocab, adjustments, row, true);
    }

    /**
     * {@link #computeOnHost(float[], int, int, LogitAdjustments, int)}; without {@code expSum} the row's sum is left
     * NaN (for a request whose {@link CandidateRequest#needsExpSum} is false: it saves an {@code exp} per token).
     */
    public void computeOnHost(float[] logits, int offset, int vocab, LogitAdjustments adjustments, int row,
            boolean expSum) {
        Objects.checkIndex(row, rows);
        Objects.checkFromIndexSize(offset, vocab, logits.length);
        if (work.length != vocab) {
            work = new float[vocab];
            index = new int[vocab];
        }
        boolean bad = false;
        for (int i = 0; i < vocab; i++) {
            float v = logits[offset + i];
            bad |= v != v | v == Float.POSITIVE_INFINITY;
            work[i] = v;
        }
        for (int e = 0; e < adjustments.size(); e++) {
            int id = adjustments.id(e);
            float v = adjustments.apply(e, work[id]);
            bad |= v != v | v == Float.POSITIVE_INFINITY;
            work[id] = v;
        }
        int width = Math.min(K, vocab);
        widths[row] = width;
        flagged[row] = bad;
        if (bad) {   // the order is undefined with NaN; the row is never decided from its candidates
            Arrays.fill(ids, row * K, row * K + width, 0);
            Arrays.fill(values, row * K, row * K + width, Float.NaN);
            expSums[row] = Double.NaN;
            return;
        }
        for (int i = 0; i < vocab; i++) {
            index[i] = i;
        }
        CandidateOrder.selectFirst(index, vocab, width, work);
        CandidateOrder.sort(index, 0, width, work);
        for (int i = 0; i < width; i++) {
            ids[row * K + i] = index[i];
            values[row * K + i] = work[index[i]];
        }
        if (!expSum) {
            expSums[row] = Double.NaN;
            return;
        }
        double max = work[index[0]];
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            sum += Math.exp(work[i] - max);   // the terms and the order of Sampler's top-p and Logprobs: the same sum
        }
        expSums[row] = sum;
    }

    /** Row {@code row} from the device layout ({@link #DEVICE_WORDS} words from {@code words[at]}). */
    public void readDevice(int row, int[] words, int at) {
        Objects.checkIndex(row, rows);
        Objects.checkFromIndexSize(at, DEVICE_WORDS, words.length);
        int width = words[at + 2 * K + 3];
        if (width < 1 || width > K) {
            throw new IllegalStateException("device candidates of width " + width + " (expected 1.." + K + ")");
        }
        widths[row] = width;
        flagged[row] = words[at + 2 * K + 2] != 0;
        for (int i = 0; i < width; i++) {
            ids[row * K + i] = words[at + i];
            values[row * K + i] = Float.intBitsToFloat(words[at + K + i]);
        }
        long bits = (words[at + 2 * K] & 0xffffffffL) | ((long) words[at + 2 * K + 1] << 32);
        expSums[row] = Double.longBitsToDouble(bits);
    }
}
