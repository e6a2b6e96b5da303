package aether.llm.arch;

import aether.llm.model.ModelConfig;
import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.GraphExecutor;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.WeightRows;
import aether.scheduler.graph.Evaluation;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The forward pass of one batch shape: {@code tokens} new tokens at positions {@code [past, past + tokens)} attending
 * to {@code past} cached positions. Built once per shape by an {@link Architecture} and {@link #run run} any number of
 * times with new inputs (the Graph API rebinds input leaves with {@code Graph.set}).
 *
 * <p>Inputs: the token ids, and per layer the cached keys {@code f32[past, n_head_kv, head_dim]} and values {@code
 * f32[past, n_head_kv, value_head_dim]}, token-major (one cache row per position, as a KV cache appends them). Outputs:
 * the logits {@code f32[vocab]} of the last token only (what greedy decoding and sampling need; llama.cpp likewise
 * computes the output projection for the requested rows only), and per layer the new keys (after RoPE) and values of
 * the batch, in the cache's layout, for the caller to append. Not thread-safe: one run at a time.
 */
public final class ForwardGraph {

    private final ModelConfig config;
    private final int tokens;
    private final int past;
    private final Graph graph;
    private final Tensor tokenIds;
    private final Tensor[] cachedKeys;
    private final Tensor[] cachedValues;
    private final Tensor[] outputs;

    private ForwardGraph(Builder b, Tensor logits) {
        this.config = b.config;
        this.tokens = b.tokens;
        this.past = b.past;
        this.graph = b.graph;
        this.tokenIds = b.tokenIds;
        this.cachedKeys = b.cachedKeys;
        this.cachedValues = b.cachedValues;
        int layers = config.blockCount();
        this.outputs = new Tensor[1 + 2 * layers];
        outputs[0] = logits;
        for (int il = 0; il < layers; il++) {
            if (b.newKeys[il] == null || b.newValues[il] == null) {
                throw new IllegalStateException(config.architecture() + ": layer " + il + " built no attention");
            }
            outputs[1 + il] = b.newKeys[il];
            outputs[1 + layers + il] = b.newValues[il];
        }
    }

    /**
     * The computed values of one run. Arrays are fresh and owned by the caller. {@code logits} holds the last token's
     * hidden state instead for a graph built with {@link StepShape.Output#HIDDEN}.
     */
    public record Result(float[] logits, float[][] newKeys, float[][] newValues) {}

    public int tokens() {
        return tokens;
    }

    public int past() {
        return past;
    }

    /** The underlying graph (for dumps and compiler passes); do not append to it. */
    public Graph graph() {
        return graph;
    }

    /**
     * Runs the pass on {@code executor}.
     *
     * @param ids    the {@code tokens} new token ids, each in {@code [0, vocab)}
     * @param keys   per layer, the cached keys of positions {@code [0, past)}: exactly {@code past * keyWidth} floats
     * @param values per layer, the cached values: exactly {@code past * valueWidth} floats
     * @throws IllegalArgumentException when a length or a token id is out of range
     */
    public Result run(GraphExecutor executor, int[] ids, float[][] keys, float[][] values) {
        if (ids.length != tokens) {
            throw new IllegalArgumentException("forward graph for " + tokens + " tokens run with " + ids.length);
        }
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + ids[i] + " at index " + i + " is out of range"
                        + " (expected: 0.." + (config.vocabSize() - 1) + ")");
            }
        }
        int layers = config.blockCount();
        if (keys.length != layers || values.length != layers) {
            throw new IllegalArgumentException("cached keys/values for " + keys.length + "/" + values.length
                    + " layers, model has " + layers);
        }
        graph.set(tokenIds, HostTensor.ofInts(ids, Shape.of(tokens)));
        if (past > 0) {
            for (int il = 0; il < layers; il++) {
                graph.set(cachedKeys[il], cacheValue(keys[il], il, "keys", config.headDim()));
                graph.set(cachedValues[il], cacheValue(values[il], il, "values", config.valueHeadDim()));
            }
        }
        Evaluation e = graph.evaluate(executor, outputs);
        float[][] newKeys = new float[layers][];
        float[][] newValues = new float[layers][];
        for (int il = 0; il < layers; il++) {
            newKeys[il] = e.floats(outputs[1 + il]);
            newValues[il] = e.floats(outputs[1 + layers + il]);
        }
        return new Result(e.floats(outputs[0]), newKeys, newValues);
    }

    private HostTensor cacheValue(float[] data, int layer, String what, int headDim) {
        Shape shape = Shape.of(past, config.headCountKv(), headDim);
        if (data.length != shape.size()) {
            throw new IllegalArgumentException("layer " + layer + " cached " + what + ": " + data.length
                    + " floats, expected " + shape.size() + " for " + shape);
        }
        return HostTensor.ofFloats(data, shape);
    }

    static Builder builder(ModelConfig config, int tokens, int past, Numerics numerics, float[] ropeFactors,
            StepShape.Output output) {
        return new Builder(config, tokens, past, numerics, ropeFactors, output);
    }

    static Builder stepBuilder(ModelConfig config, StepShape shape, Numerics numerics, float[] ropeFactors) {
        return new Builder(config, shape, numerics, ropeFactors, LayerRange.all(config.blockCount()));
    }

    /** A step builder for the layers of {@code layers} only: caches for those layers, a hidden-state input after 0. */
    static Builder stepBuilder(ModelConfig config, StepShape shape, Numerics numerics, float[] ropeFactors,
            LayerRange layers) {
        return new Builder(config, shape, numerics, ropeFactors, layers);
    }

    /**
     * The pieces every architecture's graph is made of, over one {@link Graph}: the inputs, weights bound once per
     * graph, RMSNorm, RoPE and cached attention. Architectures chain them in the order their math runs.
     */
    static final class Builder {

        final ModelConfig config;
        final int tokens;
        final int past;
        final Numerics numerics;
        final Graph graph = new Graph();
        final Tensor tokenIds;
        final Tensor positions;
        final Tensor[] cachedKeys;
        final Tensor[] cachedValues;
        final Tensor[] newKeys;
        final Tensor[] newValues;
        /** Set for a shape-stable step graph over a paged cache ({@link StepGraph}); null for a per-shape graph. */
        final StepShape step;
        /** What the graph ends with: logits, or the normed hidden states (an embedding pass). */
        final StepShape.Output output;
        final Tensor slots;
        final Tensor blockTable;
        final Tensor logitRows;
        final Tensor[] keyCache;
        final Tensor[] valueCache;
        /** The layers this graph runs (all of them, except for a step graph of a split model). */
        final LayerRange layers;
        /** f32[tokens, n_embd]: the residual stream entering {@link #layers}, for a range after layer 0; else null. */
        final Tensor hiddenIn;
        private final Tensor ropeFactors;
        private final Map<Object, Tensor> leaves = new IdentityHashMap<>();

        private Builder(ModelConfig config, int tokens, int past, Numerics numerics, float[] ropeFactors,
                StepShape.Output output) {
            if (tokens < 1 || past < 0 || (long) past + tokens > config.contextLength()) {
                throw new IllegalArgumentException(config.architecture() + ": forward of " + tokens
                        + " tokens after " + past + " (expected: tokens >= 1, past >= 0, past + tokens <= context"
                        + " length " + config.contextLength() + ")");
            }
            this.config = config;
            this.numerics = java.util.Objects.requireNonNull(numerics, "numerics");
            this.tokens = tokens;
            this.past = past;
            this.step = null;
            this.output = java.util.Objects.requireNonNull(output, "output");
            this.slots = null;
            this.blockTable = null;
            this.logitRows = null;
            this.keyCache = null;
            this.valueCache = null;
            this.layers = LayerRange.all(config.blockCount());
            this.hiddenIn = null;
            this.tokenIds = graph.input("token_ids", Shape.of(tokens), DType.I32);
            int[] pos = new int[tokens];
            for (int i = 0; i < tokens; i++) {
                pos[i] = past + i;
            }
            this.positions = graph.indices(pos, Shape.of(tokens));
            int layers = config.blockCount();
            this.cachedKeys = new Tensor[layers];
            this.cachedValues = new Tensor[layers];
            this.newKeys = new Tensor[layers];
            this.newValues = new Tensor[layers];
            if (past > 0) {
                for (int il = 0; il < layers; il++) {
                    cachedKeys[il] = graph.input("cache_k." + il,
                            Shape.of(past, config.headCountKv(), config.headDim()), DType.F32);
                    cachedValues[il] = graph.input("cache_v." + il,
                            Shape.of(past, config.headCountKv(), config.valueHeadDim()), DType.F32);
                }
            }
            this.ropeFactors = ropeFactors == null ? null : vector(ropeFactors);
        }

        /** A step graph: every per-step fact (ids, positions, cache rows, block tables) is an I32 input. */
        private Builder(ModelConfig config, StepShape shape, Numerics numerics, float[] ropeFactors,
                LayerRange layers) {
            if (layers.count() != config.blockCount()) {
                throw new IllegalArgumentException(config.architecture() + ": " + layers + " for a model of "
                        + config.blockCount() + " layers");
            }
            this.config = config;
            this.layers = layers;
            this.numerics = java.util.Objects.requireNonNull(numerics, "numerics");
            this.step = shape;
            this.output = shape.output();
            this.tokens = shape.tokens();
            this.past = -1;
            this.tokenIds = graph.input("token_ids", Shape.of(tokens), DType.I32);
            this.positions = graph.input("positions", Shape.of(tokens), DType.I32);
            this.slots = graph.input("slots", Shape.of(tokens), DType.I32);
            this.blockTable = graph.input("block_table", Shape.of(tokens, shape.blocksPerSequence()), DType.I32);
            this.logitRows = graph.input("logit_rows", Shape.of(shape.outputs()), DType.I32);
            int layerCount = config.blockCount();
            this.cachedKeys = null;
            this.cachedValues = null;
            this.newKeys = new Tensor[layerCount];
            this.newValues = new Tensor[layerCount];
            this.keyCache = new Tensor[layerCount];
            this.valueCache = new Tensor[layerCount];
            int slotCount = shape.cacheSlots();
            // caches only for the layers this graph runs: another device holds the others' KV
            for (int il = this.layers.first(); il < this.layers.end(); il++) {
                keyCache[il] = graph.input("cache_k." + il, Shape.of(slotCount, config.keyWidth()), shape.kvType());
                valueCache[il] = graph.input("cache_v." + il, Shape.of(slotCount, config.valueWidth()),
                        shape.kvType());
            }
            this.hiddenIn = this.layers.embeds() ? null
                    : graph.input("hidden_in", Shape.of(tokens, config.embeddingLength()), DType.F32);
            this.ropeFactors = ropeFactors == null ? null : vector(ropeFactors);
        }

        /** A matrix weight as a leaf of this graph; the same weight (tied embeddings) gives the same leaf. */
        Tensor weight(WeightRows w) {
            return leaves.computeIfAbsent(w, k -> graph.weight(w));
        }

        /** A small f32 vector (norm weight, bias) as a leaf of this graph. */
        Tensor vector(float[] v) {
            return leaves.computeIfAbsent(v, k -> graph.tensor(v, Shape.of(v.length)));
        }

        /** The embedding rows of the input tokens: f32[tokens, n_embd] (f16/bf16 tables are widened exactly). */
        Tensor embed(WeightRows table) {
            Tensor rows = weight(table).getRows(tokenIds);
            return rows.dtype().equals(DType.F32) ? rows : rows.cast(DType.F32);
        }

        /**
         * x · wᵀ for a weight in ggml layout (rows = output features); with {@link Numerics#GGML_CPU} x first takes
         * the form ggml's kernels give it for that weight type.
         */
        Tensor linear(Tensor x, WeightRows w) {
            Tensor in = numerics == Numerics.GGML_CPU ? GgmlActivations.forWeight(x, w.type()) : x;
            return in.linear(weight(w));
        }

        /** GELU, tanh approximation (through ggml's F16 table with {@link Numerics#GGML_CPU}). */
        Tensor gelu(Tensor x) {
            return numerics == Numerics.GGML_CPU ? GgmlActivations.gelu(x) : x.gelu();
        }

        /** x · wᵀ + b. */
        Tensor linear(Tensor x, WeightRows w, float[] bias) {
            return bias == null ? linear(x, w) : linear(x, w).add(vector(bias));
        }

        /** RMSNorm over the last axis, then the elementwise weight (ggml_rms_norm followed by ggml_mul). */
        Tensor rmsNorm(Tensor x, float[] weight) {
            return x.rmsNorm(config.rmsEps()).mul(vector(weight));
        }

        /** [tokens, heads * dim] viewed as [tokens, heads, dim]. */
        Tensor heads(Tensor x, int heads, int dim) {
            return x.reshape(tokens, heads, dim);
        }

        /** RoPE of x[tokens, heads, head_dim] at this batch's positions, with the model's frequencies and factors. */
        Tensor rope(Tensor x, Op.RopeMode mode) {
            return ropeFactors == null
                    ? x.rope(positions, mode, config.ropeDimensions(), config.ropeFreqBase(), config.ropeFreqScale())
                    : x.rope(positions, ropeFactors, mode, config.ropeDimensions(), config.ropeFreqBase(),
                            config.ropeFreqScale());
        }

        /**
         * Causal attention of layer {@code layer} over the cached and new positions, with grouped-query heads.
         * Records k and v (this batch's rows, k after RoPE) as the layer's outputs for the cache.
         *
         * @param q       f32[tokens, n_head, head_dim], RoPE applied
         * @param k       f32[tokens, n_head_kv, head_dim], RoPE applied
         * @param v       f32[tokens, n_head_kv, value_head_dim]
         * @param window  sliding window (0 = full causal)
         * @param softCap score soft-capping after scaling, before the mask (0 = off)
         * @return f32[tokens, n_head * value_head_dim], heads concatenated as ggml's kqv merge does
         */
        Tensor attention(int layer, Tensor q, Tensor k, Tensor v, double scale, int window, double softCap) {
            newKeys[layer] = k;
            newValues[layer] = v;
            if (step != null) {
                // store this step's rows first; attention reads the stored caches, so it sees them (causal)
                Tensor kc = keyCache[layer].kvStore(k.reshape(tokens, config.keyWidth()), slots);
                Tensor vc = valueCache[layer].kvStore(v.reshape(tokens, config.valueWidth()), slots);
                Tensor out = q.pagedAttention(kc, vc, positions, blockTable, config.headCountKv(), scale, window,
                        softCap, step.blockSize());
                return out.reshape(tokens, config.headCount() * config.valueHeadDim());
            }
            Tensor allK = past > 0 ? cachedKeys[layer].concat(0, k) : k;      // [past + tokens, n_head_kv, d]
            Tensor allV = past > 0 ? cachedValues[layer].concat(0, v) : v;
            Tensor out = q.permute(1, 0, 2)                                  // [n_head, tokens, d]
                    .attention(allK.permute(1, 0, 2), allV.permute(1, 0, 2), scale, window, softCap);
            return out.permute(1, 0, 2).reshape(tokens, config.headCount() * config.valueHeadDim());
        }

        /**
         * Whether the graph ends at the normed hidden states (an embedding step): architectures then return the
         * output norm's result and build no LM head.
         */
        boolean hiddenOutput() {
            return output == StepShape.Output.HIDDEN;
        }

        /**
         * Where a layer range starts: the embedding rows of the input tokens, or (a range after layer 0) the residual
         * stream handed over from the device that ran the layers before.
         */
        Tensor rangeInput(WeightRows table) {
            return hiddenIn != null ? hiddenIn : embed(table);
        }

        /**
         * True when the graph ends before the output norm (a layer range that stops short of the last layer): the
         * architecture then returns {@link #residualOutput}.
         */
        boolean residualOnly() {
            return !layers.hasHead();
        }

        /** The residual stream x[tokens, n_embd] of the selected rows, unnormed: a layer range's hand-over. */
        Tensor residualOutput(Tensor x) {
            return x.getRows(logitRows);
        }

        /** The last row of x[tokens, n]: the only position whose logits are computed. */
        Tensor lastToken(Tensor x) {
            if (step != null) {
                return x.getRows(logitRows);
            }
            return tokens == 1 ? x : x.slice(0, tokens - 1, tokens);
        }

        /** Finishes the graph with {@code logits} f32[1, vocab] (or the hidden state f32[1, n_embd]). */
        ForwardGraph build(Tensor logits) {
            return new ForwardGraph(this, logits.reshape(hiddenOutput() ? config.embeddingLength()
                    : config.vocabSize()));
        }

        /**
         * Finishes a step graph with its output: {@code logits} f32[outputs, vocab], or for a {@link
         * StepShape.Output#HIDDEN} shape the hidden states f32[outputs, n_embd].
         */
        StepGraph buildStep(Tensor logits) {
            return new StepGraph(config, step, graph, tokenIds, positions, slots, blockTable, logitRows, keyCache,
                    valueCache, logits, layers, hiddenIn);
        }
    }
}
