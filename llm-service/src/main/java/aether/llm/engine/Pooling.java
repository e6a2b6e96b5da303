package aether.llm.engine;

import aether.llm.gguf.GgufMetadata;
import java.util.Optional;

/**
 * How a sequence's per-token hidden states become one embedding: llama.cpp's {@code <arch>.pooling_type} values
 * (0 none, 1 mean, 2 cls, 3 last, 4 rank). A decoder-only model without the key is mean-pooled here (llama.cpp's
 * default for such models is none, which gives no single vector).
 */
public enum Pooling {
    /** No pooling: one vector per token (not one embedding per input). */
    NONE,
    /** The mean of every token's hidden state. */
    MEAN,
    /** The first token's hidden state (BERT's [CLS] position). */
    CLS,
    /** The last token's hidden state (decoder-only embedding models, e.g. Qwen3-Embedding). */
    LAST,
    /** A reranker's classification head over the pooled state; not an embedding. */
    RANK;

    /** The GGUF key that names a model's pooling. */
    public static String key(String architecture) {
        return architecture + ".pooling_type";
    }

    /**
     * The pooling {@code metadata} declares for {@code architecture}, or empty when it declares none (or -1,
     * "unspecified").
     *
     * @throws IllegalArgumentException for a value outside -1..4
     */
    public static Optional<Pooling> fromGguf(GgufMetadata metadata, String architecture) {
        String key = key(architecture);
        if (!metadata.contains(key)) {
            return Optional.empty();
        }
        long v = metadata.getLong(key, -1);
        if (v == -1) {
            return Optional.empty();
        }
        if (v < 0 || v >= values().length) {
            throw new IllegalArgumentException("metadata '" + key + "' is " + v
                    + " (expected -1 unspecified, 0 none, 1 mean, 2 cls, 3 last or 4 rank)");
        }
        return Optional.of(values()[(int) v]);
    }

    /** The pooling of {@code metadata}, mean when it declares none. */
    public static Pooling ofModel(GgufMetadata metadata, String architecture) {
        return fromGguf(metadata, architecture).orElse(MEAN);
    }

    /** The lower-case name the GGUF docs and llama.cpp use. */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** A fresh accumulator of one sequence's rows of {@code width} floats (mean, cls or last pooling). */
    public Pooler pooler(int width) {
        if (this == NONE || this == RANK) {
            throw new IllegalStateException("pooling '" + label() + "' gives no single embedding per sequence");
        }
        return new Pooler(this, width);
    }

    /** Accumulates one sequence's hidden-state rows, in position order, into its pooled vector. */
    public static final class Pooler {
        private final Pooling pooling;
        private final double[] sum;
        private int rows;

        private Pooler(Pooling pooling, int width) {
            this.pooling = pooling;
            this.sum = new double[width];
        }

        /** Adds the row {@code data[offset, offset + width)} of the next position. */
        public void add(float[] data, int offset) {
            boolean take = switch (pooling) {
                case MEAN -> true;
                case CLS -> rows == 0;
                case LAST -> true;
                default -> false;
            };
            if (take) {
                for (int i = 0; i < sum.length; i++) {
                    sum[i] = pooling == MEAN ? sum[i] + data[offset + i] : data[offset + i];
                }
            }
            rows++;
        }

        /** Rows added so far. */
        public int rows() {
            return rows;
        }

        /** The pooled vector (mean, first or last row), unnormalised, in double. */
        public double[] pooled() {
            if (rows == 0) {
                throw new IllegalStateException("no rows were pooled");
            }
            double[] out = sum.clone();
            if (pooling == MEAN) {
                for (int i = 0; i < out.length; i++) {
                    out[i] /= rows;
                }
            }
            return out;
        }

        /**
         * The pooled vector's first {@code dimensions} components scaled to unit L2 norm (truncation then
         * renormalisation, as OpenAI's text-embedding-3 models do for {@code dimensions}); a zero vector stays zero.
         */
        public float[] normalized(int dimensions) {
            if (dimensions < 1 || dimensions > sum.length) {
                throw new IllegalArgumentException("dimensions " + dimensions + " (expected 1.." + sum.length + ")");
            }
            double[] p = pooled();
            double norm = 0;
            for (int i = 0; i < dimensions; i++) {
                norm += p[i] * p[i];
            }
            norm = Math.sqrt(norm);
            float[] out = new float[dimensions];
            for (int i = 0; i < dimensions; i++) {
                out[i] = norm == 0 ? 0f : (float) (p[i] / norm);
            }
            return out;
        }
    }
}
