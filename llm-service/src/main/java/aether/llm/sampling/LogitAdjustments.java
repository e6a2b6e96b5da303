package aether.llm.sampling;

import java.util.Arrays;
import java.util.Objects;

/**
 * The sparse changes a {@link Sampler} makes to one step's logits before it filters them: the logit bias, then the
 * repetition, presence and frequency penalties of the tokens in its window. One entry per token (a token with a bias
 * that is also in the window gets both, bias first), so the whole adjusted row is {@code raw} except at these ids. A
 * device computing sampling candidates ({@code sample_candidates}) applies exactly {@link #apply}: the same float
 * operations in the same order, so the adjusted values are bit-identical to the sampler's own.
 *
 * <p>A reusable holder: {@link Sampler#adjustments} overwrites it. Not thread-safe.
 */
public final class LogitAdjustments {

    /** Entry flag: add {@link #bias(int)}. */
    public static final int BIAS = 1;
    /** Entry flag: then divide a positive (multiply a non-positive) value by {@link #repeat()} and subtract {@link #subtrahend(int)}. */
    public static final int PENALTY = 2;

    private int[] ids = new int[16];
    private int[] flags = new int[16];
    private float[] bias = new float[16];
    private float[] subtrahend = new float[16];
    private int size;
    private float repeat = 1f;

    /** Empties the list; {@code repeatPenalty} is the divisor of penalised entries. */
    void clear(float repeatPenalty) {
        size = 0;
        repeat = repeatPenalty;
    }

    void add(int id, int entryFlags, float biasValue, float sub) {
        if (size == ids.length) {
            int n = size * 2;
            ids = Arrays.copyOf(ids, n);
            flags = Arrays.copyOf(flags, n);
            bias = Arrays.copyOf(bias, n);
            subtrahend = Arrays.copyOf(subtrahend, n);
        }
        ids[size] = id;
        flags[size] = entryFlags;
        bias[size] = biasValue;
        subtrahend[size++] = sub;
    }

    /** Entries (distinct token ids). */
    public int size() {
        return size;
    }

    public int id(int i) {
        Objects.checkIndex(i, size);
        return ids[i];
    }

    /** {@link #BIAS}, {@link #PENALTY} or both. */
    public int flags(int i) {
        Objects.checkIndex(i, size);
        return flags[i];
    }

    public float bias(int i) {
        Objects.checkIndex(i, size);
        return bias[i];
    }

    /** {@code count * frequency + presence}, rounded to float as the sampler computes it. */
    public float subtrahend(int i) {
        Objects.checkIndex(i, size);
        return subtrahend[i];
    }

    public float repeat() {
        return repeat;
    }

    /** Entry i applied to {@code value}, the raw logit of its token: the sampler's float arithmetic. */
    public float apply(int i, float value) {
        Objects.checkIndex(i, size);
        float v = value;
        if ((flags[i] & BIAS) != 0) {
            v += bias[i];
        }
        if ((flags[i] & PENALTY) != 0) {
            v = v <= 0 ? v * repeat : v / repeat;
            v -= subtrahend[i];
        }
        return v;
    }

    /** Applies every entry to {@code row[offset + id]}. */
    public void applyTo(float[] row, int offset) {
        for (int i = 0; i < size; i++) {
            row[offset + ids[i]] = apply(i, row[offset + ids[i]]);
        }
    }
}
