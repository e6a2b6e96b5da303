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
    /**
     * Words per row of the device layout: K ids, K value bits, a double sum (low word first), flag, width; then the
     * draw: crossing id, decided (0/1), the crossing's value bits, a zero, u and 1/T (doubles, low word first).
     */
    public static final int DEVICE_WORDS = 2 * K + 12;
    /**
     * Parts per level of the draw's narrowing: the device block's warps (CudaKernels.CANDIDATES_WARPS); the draw's
     * summation order, which {@link #computeOnHost} repeats, depends on it.
     */
    public static final int DRAW_WARPS = 16;
    /**
     * Relative margin (to the draw's total) by which the target must clear both cumulative sums around the crossing
     * for the draw to be decided: {@link Sampler#TOP_P_MARGIN}'s argument (terms within 2 ulp, sums of up to 256k
     * terms in any order within ~3e-11 relative), the kernel's CAND_DRAW_MARGIN.
     */
    public static final double DRAW_MARGIN = 1e-9;

    private final int rows;
    private final int[] ids;
    private final float[] values;
    private final double[] expSums;
    private final boolean[] flagged;
    private final int[] widths;
    private final int[] drawnIds;
    private final boolean[] drawDecided;
    private final float[] drawnValues;
    private final double[] drawUniforms;
    private final double[] drawInverseTemperatures;
    /** Scratch of {@link #computeOnHost}, sized for the last vocabulary it saw. */
    private float[] work = new float[0];
    private int[] index = new int[0];
    private final double[] lanes = new double[32];
    private final double[] parts = new double[DRAW_WARPS];

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
        this.drawnIds = new int[rows];
        this.drawDecided = new boolean[rows];
        this.drawnValues = new float[rows];
        this.drawUniforms = new double[rows];
        this.drawInverseTemperatures = new double[rows];
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
     * The draw's token: the first id whose cumulative sum of {@code exp((v - max) * inverseTemperature)} (v the
     * adjusted logits, in id order) exceeds {@code uniform} times their total; -1 when the row was computed without a
     * draw, is flagged or entirely banned, or rounding left the target past the end.
     */
    public int drawnId(int row) {
        return drawnIds[row];
    }

    /**
     * Whether {@link #drawnId} is certain: the target clears the cumulative sums before and after the crossing by more
     * than {@link #DRAW_MARGIN} of the total, far more than the host's sums (another order, another {@code exp}) can
     * differ from these, so the host's draw with the same uniform gives the same token.
     */
    public boolean drawDecided(int row) {
        return drawDecided[row];
    }

    /** The adjusted logit of {@link #drawnId} (NaN without one). */
    public float drawnValue(int row) {
        return drawnValues[row];
    }

    /** The uniform in [0, 1) the draw was computed with; NaN when the row was computed without a draw. */
    public double drawUniform(int row) {
        return drawUniforms[row];
    }

    /** The inverse temperature the draw was computed with; NaN when the row was computed without a draw. */
    public double drawInverseTemperature(int row) {
        return drawInverseTemperatures[row];
    }

    /**
     * Computes row {@code row} for {@code request} from {@code logits[offset, offset + vocab)}: its adjustments, the
     * sum only where it {@link CandidateRequest#needsExpSum needs it}, and its draw (if it asks for one).
     */
    public void computeOnHost(float[] logits, int offset, int vocab, CandidateRequest request, int row) {
        computeOnHost(logits, offset, vocab, request.adjustments(), row, request.needsExpSum(), request.drawUniform(),
                request.drawInverseTemperature());
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
        computeOnHost(logits, offset, vocab, adjustments, row, expSum, Double.NaN, Double.NaN);
    }

    /**
     * {@link #computeOnHost(float[], int, int, LogitAdjustments, int, boolean)} with the draw over the whole adjusted
     * row for {@code uniform} in [0, 1) (NaN: none) at {@code inverseTemperature}, in the device kernel's summation
     * order (see {@link #draw}).
     *
     * @throws IllegalArgumentException when a draw is asked with a uniform outside [0, 1) or an inverse temperature
     *                                  that is not finite and positive
     */
    public void computeOnHost(float[] logits, int offset, int vocab, LogitAdjustments adjustments, int row,
            boolean expSum, double uniform, double inverseTemperature) {
        Objects.checkIndex(row, rows);
        checkDraw(uniform, inverseTemperature);
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
        drawnIds[row] = -1;
        drawDecided[row] = false;
        drawnValues[row] = Float.NaN;
        drawUniforms[row] = uniform;
        drawInverseTemperatures[row] = Double.isNaN(uniform) ? Double.NaN : inverseTemperature;
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
        float top = work[index[0]];
        if (!Double.isNaN(uniform) && top != Float.NEGATIVE_INFINITY) {
            draw(vocab, top, uniform, inverseTemperature, row);
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

    /**
     * Checks a draw's arguments: none (uniform NaN), or a uniform in [0, 1) and a finite positive inverse temperature.
     *
     * @throws IllegalArgumentException naming both otherwise
     */
    public static void checkDraw(double uniform, double inverseTemperature) {
        if (!Double.isNaN(uniform) && !(uniform >= 0 && uniform < 1
                && inverseTemperature > 0 && inverseTemperature < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("draw of uniform " + uniform + " at inverse temperature "
                    + inverseTemperature + " (expected a uniform in [0, 1), or NaN for none, and 1/T finite and > 0)");
        }
    }

    /**
     * The draw over {@code work[0, n)} (the adjusted row, its largest value {@code max}) in the kernel's order
     * ({@code cand_draw} in candidates.cuh): the range is narrowed level by level, cut into {@link #DRAW_WARPS} parts
     * of a multiple of 32 ids; part k's sum is the butterfly (lane l with lane l ^ o, o = 16, 8, 4, 2, 1) of 32 lane
     * sums, lane l summing ids start + l, start + l + 32, ... in order; the parts are added in order from the sum
     * before the range, the first level's giving the total and the target {@code uniform * total}; the first part whose
     * cumulative sum exceeds the target is the next range; at most 32 ids are scanned inclusively (Hillis-Steele:
     * v[l] += v[l - o], o = 1, 2, 4, 8, 16). Terms are {@code exp(((double) v - max) * inverseTemperature)}, as in
     * Sampler's probabilities.
     */
    private void draw(int n, float max, double uniform, double inverseTemperature, int row) {
        double dmx = max;
        float[] w = work;
        double[] lane = lanes;
        int lo = 0, hi = n;
        double base = 0, total = -1, target = 0;
        while (hi - lo > 32) {
            int part = ((hi - lo + DRAW_WARPS - 1) / DRAW_WARPS + 31) & ~31;
            for (int k = 0; k < DRAW_WARPS; k++) {
                int start = lo + k * part;
                int end = Math.min(hi, start + part);
                for (int l = 0; l < 32; l++) {
                    double s = 0;
                    for (int i = start + l; i < end; i += 32) {
                        s += Math.exp((w[i] - dmx) * inverseTemperature);
                    }
                    lane[l] = s;
                }
                for (int o = 16; o > 0; o >>= 1) {   // every lane adds its partner's value of the step before
                    for (int l = 0; l < 32; l++) {
                        if ((l & o) == 0) {
                            double sum = lane[l] + lane[l | o];
                            lane[l] = sum;
                            lane[l | o] = sum;
                        }
                    }
                }
                parts[k] = lane[0];
            }
            if (total < 0) {
                double c = base;
                for (int k = 0; k < DRAW_WARPS; k++) {
                    c += parts[k];
                }
                total = c;
                target = uniform * total;
            }
            double c = base;
            int found = -1;
            for (int k = 0; k < DRAW_WARPS; k++) {
                double next = c + parts[k];
                if (next > target) {
                    found = k;
                    break;
                }
                c = next;
            }
            if (found < 0) {
                return;   // rounding left the target past the end: no crossing (the host path decides)
            }
            hi = Math.min(hi, lo + (found + 1) * part);
            lo += found * part;
            base = c;
        }
        for (int l = 0; l < 32; l++) {
            lane[l] = lo + l < hi ? Math.exp((w[lo + l] - dmx) * inverseTemperature) : 0;
        }
        for (int o = 1; o < 32; o <<= 1) {
            for (int l = 31; l >= o; l--) {   // downwards: lane[l - o] is still the step before's
                lane[l] += lane[l - o];
            }
        }
        if (total < 0) {
            total = base + lane[31];
            target = uniform * total;
        }
        for (int l = 0; l < hi - lo; l++) {
            double inclusive = base + lane[l];
            if (inclusive > target) {
                double exclusive = l == 0 ? base : base + lane[l - 1];
                double margin = total * DRAW_MARGIN;
                drawnIds[row] = lo + l;
                drawnValues[row] = w[lo + l];
                drawDecided[row] = target - exclusive > margin && inclusive - target > margin;
                return;
            }
        }
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
        expSums[row] = doubleAt(words, at + 2 * K);
        int drawn = words[at + 2 * K + 4];
        int decided = words[at + 2 * K + 5];
        if (decided != 0 && decided != 1 || decided == 1 && drawn < 0) {
            throw new IllegalStateException("device draw of id " + drawn + ", decided " + decided
                    + " (expected decided 0, or 1 with an id >= 0)");
        }
        drawnIds[row] = drawn;
        drawDecided[row] = decided == 1;
        drawnValues[row] = Float.intBitsToFloat(words[at + 2 * K + 6]);
        double uniform = doubleAt(words, at + 2 * K + 8);
        drawUniforms[row] = uniform >= 0 ? uniform : Double.NaN;   // the kernel draws for u >= 0 only
        drawInverseTemperatures[row] = uniform >= 0 ? doubleAt(words, at + 2 * K + 10) : Double.NaN;
    }

    private static double doubleAt(int[] words, int at) {
        return Double.longBitsToDouble((words[at] & 0xffffffffL) | ((long) words[at + 1] << 32));
    }
}
