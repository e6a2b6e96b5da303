package aether.llm.arch;

/**
 * A contiguous run of a model's transformer layers, {@code [first, end)}, built as one step graph: the part of a model
 * that one device runs when its layers are split between devices ({@code --gpu-layers}).
 *
 * <p>A range that starts at layer 0 begins with the token-embedding lookup; one that starts later takes the residual
 * stream after layer {@code first - 1} as an input instead ({@code f32[tokens, n_embd]}, one row per new token). A
 * range that ends at the last layer finishes with the output norm and the LM head (or the normed hidden states of an
 * embedding step); one that ends earlier outputs the residual stream after layer {@code end - 1}, unnormed, one row per
 * token the step selects (the next range's input).
 *
 * @param first the first layer of the range
 * @param end   one past the last layer
 * @param count the model's number of layers
 */
public record LayerRange(int first, int end, int count) {

    public LayerRange {
        if (count < 1 || first < 0 || end > count || first >= end) {
            throw new IllegalArgumentException("layer range [" + first + ", " + end + ") of a model of " + count
                    + " layers (expected 0 <= first < end <= " + count + ")");
        }
    }

    /** Every layer of a model of {@code count} layers. */
    public static LayerRange all(int count) {
        return new LayerRange(0, count, count);
    }

    /** True when the range starts with the embedding lookup (layer 0). */
    public boolean embeds() {
        return first == 0;
    }

    /** True when the range ends with the output norm and head (it holds the last layer). */
    public boolean hasHead() {
        return end == count;
    }

    /** True for the whole model. */
    public boolean isAll() {
        return first == 0 && end == count;
    }

    /** Layers in the range. */
    public int size() {
        return end - first;
    }

    @Override
    public String toString() {
        return "layers [" + first + ", " + end + ") of " + count;
    }
}
