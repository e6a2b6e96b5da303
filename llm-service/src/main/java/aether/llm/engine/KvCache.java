package aether.llm.engine;

import aether.llm.model.ModelConfig;
import java.util.Arrays;

/**
 * The keys and values of one sequence's past positions, per layer, preallocated for {@code capacity} positions.
 * Token-major: position p of layer l holds {@code keyWidth} floats at {@code p * keyWidth} of {@code keys[l]} (heads
 * one after another, as the forward graph produces them). Not thread-safe: one sequence, one thread.
 */
public final class KvCache {

    private final int keyWidth;
    private final int valueWidth;
    private final int capacity;
    private final float[][] keys;
    private final float[][] values;
    private int length;

    public KvCache(int layers, int keyWidth, int valueWidth, int capacity) {
        if (layers < 1 || keyWidth < 1 || valueWidth < 1 || capacity < 1) {
            throw new IllegalArgumentException("KV cache of " + layers + " layers, widths " + keyWidth + "/"
                    + valueWidth + ", capacity " + capacity + " (expected: all 1+)");
        }
        long floats = (long) capacity * Math.max(keyWidth, valueWidth);
        if (floats > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("KV cache capacity " + capacity + " x width "
                    + Math.max(keyWidth, valueWidth) + " does not fit one array per layer");
        }
        this.keyWidth = keyWidth;
        this.valueWidth = valueWidth;
        this.capacity = capacity;
        this.keys = new float[layers][capacity * keyWidth];
        this.values = new float[layers][capacity * valueWidth];
    }

    /** A cache for {@code capacity} positions of {@code config}'s model (at most its context length). */
    public static KvCache create(ModelConfig config, int capacity) {
        if (capacity > config.contextLength()) {
            throw new IllegalArgumentException("KV cache capacity " + capacity + " exceeds the context length "
                    + config.contextLength() + " of this " + config.architecture() + " model");
        }
        return new KvCache(config.blockCount(), config.keyWidth(), config.valueWidth(), capacity);
    }

    /** Positions held. */
    public int length() {
        return length;
    }

    public int capacity() {
        return capacity;
    }

    public int layers() {
        return keys.length;
    }

    /** A copy of layer {@code layer}'s keys of positions {@code [0, length)}. */
    public float[] keys(int layer) {
        return Arrays.copyOf(keys[layer], length * keyWidth);
    }

    /** A copy of layer {@code layer}'s values of positions {@code [0, length)}. */
    public float[] values(int layer) {
        return Arrays.copyOf(values[layer], length * valueWidth);
    }

    /**
     * Appends {@code tokens} positions: per layer {@code tokens * keyWidth} keys and {@code tokens * valueWidth} values.
     *
     * @throws IllegalStateException    when the positions do not fit the capacity (nothing is appended)
     * @throws IllegalArgumentException when the arrays do not have those lengths
     */
    public void append(int tokens, float[][] newKeys, float[][] newValues) {
        if (tokens < 0 || tokens > capacity - length) {
            throw new IllegalStateException("KV cache full: holds " + length + " of " + capacity
                    + " positions, cannot append " + tokens);
        }
        if (newKeys.length != keys.length || newValues.length != values.length) {
            throw new IllegalArgumentException("appending " + newKeys.length + "/" + newValues.length
                    + " layers to a cache of " + keys.length);
        }
        for (int l = 0; l < keys.length; l++) {
            if (newKeys[l].length != tokens * keyWidth || newValues[l].length != tokens * valueWidth) {
                throw new IllegalArgumentException("layer " + l + ": " + newKeys[l].length + " keys and "
                        + newValues[l].length + " values for " + tokens + " positions (expected "
                        + tokens * keyWidth + " and " + tokens * valueWidth + ")");
            }
        }
        for (int l = 0; l < keys.length; l++) {
            System.arraycopy(newKeys[l], 0, keys[l], length * keyWidth, tokens * keyWidth);
            System.arraycopy(newValues[l], 0, values[l], length * valueWidth, tokens * valueWidth);
        }
        length += tokens;
    }

    /** Forgets positions {@code [length, length())} (the arrays are kept). */
    public void truncate(int length) {
        if (length < 0 || length > this.length) {
            throw new IllegalArgumentException("truncate a KV cache of " + this.length + " positions to " + length
                    + " (expected 0.." + this.length + ")");
        }
        this.length = length;
    }

    /** Forgets every position (the arrays are kept). */
    public void clear() {
        length = 0;
    }
}
