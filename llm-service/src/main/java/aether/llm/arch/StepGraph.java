package aether.llm.arch;

import aether.llm.model.ModelConfig;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.scheduler.compile.Program;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * The forward pass of one {@link StepShape}, shape-stable: the same graph serves every step with that many tokens and
 * logit rows, whichever sequences they belong to, because every per-step fact is an I32 input.
 *
 * <p>Inputs (all row-major): {@code token_ids I32[tokens]}; {@code positions I32[tokens]}, each token's position in
 * its own sequence; {@code slots I32[tokens]}, the cache row each token's keys and values are written to ({@code
 * block * blockSize + position % blockSize}); {@code block_table I32[tokens, blocksPerSequence]}, each token's
 * sequence's blocks in order (unused entries may hold any valid block); {@code logit_rows I32[outputs]}, the tokens
 * whose logits are computed; per layer the caches {@code cache_k.i [slots, n_head_kv * head_dim]} and {@code
 * cache_v.i} of the KV type, updated in place by the graph's {@code kv_store} nodes. Output: logits f32[outputs,
 * vocab], or for a {@link StepShape.Output#HIDDEN} shape the final hidden states f32[outputs, n_embd] (after the
 * output norm; no LM head). A graph of a {@link LayerRange} has caches for its layers only, takes {@code hidden_in}
 * instead of embedding the token ids when it starts after layer 0, and outputs the unnormed residual stream
 * f32[outputs, n_embd] when it ends before the last layer. Not thread-safe.
 */
public final class StepGraph {

    private final ModelConfig config;
    private final StepShape shape;
    private final Graph graph;
    private final Tensor tokenIds;
    private final Tensor positions;
    private final Tensor slots;
    private final Tensor blockTable;
    private final Tensor logitRows;
    private final Tensor[] keyCache;
    private final Tensor[] valueCache;
    private final Tensor logits;
    private final LayerRange layers;
    private final Tensor hiddenIn;

    StepGraph(ModelConfig config, StepShape shape, Graph graph, Tensor tokenIds, Tensor positions, Tensor slots,
            Tensor blockTable, Tensor logitRows, Tensor[] keyCache, Tensor[] valueCache, Tensor logits,
            LayerRange layers, Tensor hiddenIn) {
        this.config = config;
        this.shape = shape;
        this.graph = graph;
        this.tokenIds = tokenIds;
        this.positions = positions;
        this.slots = slots;
        this.blockTable = blockTable;
        this.logitRows = logitRows;
        this.keyCache = keyCache;
        this.valueCache = valueCache;
        this.logits = logits;
        this.layers = layers;
        this.hiddenIn = hiddenIn;
    }

    /** The layers the graph runs: all of them, or one device's share of a split model ({@link LayerRange}). */
    public LayerRange layers() {
        return layers;
    }

    /**
     * For a layer range after layer 0, the input {@code f32[tokens, n_embd]}: the residual stream after layer {@code
     * layers().first() - 1}, one row per token in step order (the token ids are then not read); null otherwise.
     */
    public Tensor hiddenIn() {
        return hiddenIn;
    }

    public ModelConfig config() {
        return config;
    }

    public StepShape shape() {
        return shape;
    }

    /** The underlying graph, for binding inputs with {@code Graph.set} and evaluating on an executor. */
    public Graph graph() {
        return graph;
    }

    public Tensor tokenIds() {
        return tokenIds;
    }

    public Tensor positions() {
        return positions;
    }

    public Tensor slots() {
        return slots;
    }

    public Tensor blockTable() {
        return blockTable;
    }

    public Tensor logitRows() {
        return logitRows;
    }

    /** Layer {@code layer}'s key cache; null for a layer outside {@link #layers()}. */
    public Tensor keyCache(int layer) {
        return keyCache[layer];
    }

    public Tensor valueCache(int layer) {
        return valueCache[layer];
    }

    /** The graph's output: logits, or hidden states for a {@link StepShape.Output#HIDDEN} shape. */
    public Tensor logits() {
        return logits;
    }

    /**
     * Floats per output row: the vocabulary size, or the embedding length for a hidden-state step or a layer range
     * that ends before the head (its residual stream).
     */
    public int outputWidth() {
        return shape.output() == StepShape.Output.HIDDEN || !layers.hasHead() ? config.embeddingLength()
                : config.vocabSize();
    }

    /**
     * The graph as a compiler {@link Program}: every leaf bound at build time (weights, norm vectors, biases, RoPE
     * factors) is a constant; the step inputs above are run-time inputs ({@code mapping} gives their program ids).
     */
    public Program.Snapshot program() {
        List<Tensor> constants = new ArrayList<>();
        for (int id = 0; id < graph.size(); id++) {
            Node n = graph.node(id);
            if (n.op() instanceof Op.Input && graph.value(graph.tensor(id)) != null) {
                constants.add(graph.tensor(id));
            }
        }
        return Program.from(graph, constants, logits);
    }
}
