package aether.llm.server;

import aether.llm.engine.InferenceModel;
import aether.llm.engine.Pooling;

/**
 * Embeddings of token sequences: each input's final hidden states (after the output norm) pooled as the model says
 * ({@link Pooling}), truncated to {@code dimensions} and L2-normalised.
 */
final class EmbeddingJob extends PromptJob<float[][]> {

    private final Pooling pooling;
    private final int width;
    private final int dimensions;
    private final Pooling.Pooler[] poolers;

    /**
     * @param width      the model's embedding length
     * @param dimensions components kept (1..width), before normalising
     */
    EmbeddingJob(int[][] inputs, Pooling pooling, int width, int dimensions) {
        super(inputs, InferenceModel.Output.ALL_HIDDEN);
        if (dimensions < 1 || dimensions > width) {
            throw new IllegalArgumentException("dimensions " + dimensions + " (expected 1.." + width + ")");
        }
        this.pooling = pooling;
        this.width = width;
        this.dimensions = dimensions;
        this.poolers = new Pooling.Pooler[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            poolers[i] = pooling.pooler(width);
        }
    }

    @Override
    void accept(int input, float[] out, int offset, int count, int rowWidth) {
        for (int r = 0; r < count; r++) {
            poolers[input].add(out, offset + r * rowWidth);
        }
    }

    @Override
    void restart(int input) {
        poolers[input] = pooling.pooler(width);
    }

    @Override
    float[][] finish() {
        float[][] out = new float[poolers.length][];
        for (int i = 0; i < out.length; i++) {
            out[i] = poolers[i].normalized(dimensions);
        }
        return out;
    }
}
