package aether.llm.arch;

import aether.llm.model.ModelConfig;
import aether.llm.model.ModelWeights;
import aether.runtime.ir.Op;
import aether.scheduler.exec.WeightRows;
import aether.scheduler.graph.Tensor;

/**
 * The Llama block and its close relatives, which differ only in a few switches ({@link Variant}):
 * <ul>
 *   <li>{@code llama} — Llama 2/3/3.1/3.2 and Mistral (llama.cpp {@code build_llama}): "normal" RoPE (adjacent
 *       pairs), optional q/k/v/o biases; Llama 3.1's frequency-dependent RoPE scaling comes as the optional
 *       {@code rope_freqs.weight} tensor.</li>
 *   <li>{@code qwen2} — Qwen 2 / 2.5 ({@code build_qwen2}): NeoX RoPE (halves rotated) and required biases on Q, K
 *       and V, added before RoPE.</li>
 *   <li>{@code qwen3} — Qwen 3 dense ({@code build_qwen3}): NeoX RoPE, no biases, and an RMSNorm over each head of Q
 *       and of K ({@code attn_q_norm}/{@code attn_k_norm}, weights [head_dim], the model's eps) before RoPE.</li>
 * </ul>
 * All are pre-norm blocks of grouped-query attention and a SwiGLU feed-forward network; the output matrix falls back
 * to the token embeddings when the file has no {@code output.weight} (tied embeddings).
 */
public final class LlamaArchitecture implements Architecture {

    /** How the Q/K/V projections are biased. */
    enum Biases { OPTIONAL, REQUIRED, NONE }

    /** The switches that tell the relatives apart. */
    record Variant(Op.RopeMode ropeMode, Biases biases, boolean qkNorm) {
        static final Variant LLAMA = new Variant(Op.RopeMode.NORMAL, Biases.OPTIONAL, false);
        static final Variant QWEN2 = new Variant(Op.RopeMode.NEOX, Biases.REQUIRED, false);
        static final Variant QWEN3 = new Variant(Op.RopeMode.NEOX, Biases.NONE, true);
    }

    /** One block's tensors; biases and q/k norms are null when the variant or the file has none. */
    record Layer(float[] attnNorm, WeightRows wq, float[] bq, float[] qNorm, WeightRows wk, float[] bk, float[] kNorm,
            WeightRows wv, float[] bv, WeightRows wo, float[] bo, float[] ffnNorm, WeightRows gate, WeightRows up,
            WeightRows down) {}

    private final ModelConfig config;
    private final Variant variant;
    private final WeightRows tokenEmbedding;
    private final Layer[] layers;
    private final float[] outputNorm;
    private final WeightRows output;
    private final float[] ropeFactors;

    LlamaArchitecture(ModelConfig config, ModelWeights weights, Variant variant) {
        this.config = config;
        this.variant = variant;
        this.tokenEmbedding = TensorNames.tokenEmbedding(weights, config);
        this.layers = new Layer[config.blockCount()];
        int e = config.embeddingLength();
        for (int il = 0; il < layers.length; il++) {
            layers[il] = new Layer(
                    weights.vector(TensorNames.blk(il, "attn_norm.weight"), e),
                    weights.matrix(TensorNames.blk(il, "attn_q.weight"), config.queryWidth(), e),
                    bias(weights, il, "attn_q.bias", config.queryWidth()),
                    qkNorm(weights, il, "attn_q_norm.weight"),
                    weights.matrix(TensorNames.blk(il, "attn_k.weight"), config.keyWidth(), e),
                    bias(weights, il, "attn_k.bias", config.keyWidth()),
                    qkNorm(weights, il, "attn_k_norm.weight"),
                    weights.matrix(TensorNames.blk(il, "attn_v.weight"), config.valueWidth(), e),
                    bias(weights, il, "attn_v.bias", config.valueWidth()),
                    weights.matrix(TensorNames.blk(il, "attn_output.weight"), e,
                            config.headCount() * config.valueHeadDim()),
                    variant.biases() == Biases.OPTIONAL
                            ? weights.optionalVector(TensorNames.blk(il, "attn_output.bias"), e).orElse(null) : null,
                    weights.vector(TensorNames.blk(il, "ffn_norm.weight"), e),
                    weights.matrix(TensorNames.blk(il, "ffn_gate.weight"), config.feedForwardLength(), e),
                    weights.matrix(TensorNames.blk(il, "ffn_up.weight"), config.feedForwardLength(), e),
                    weights.matrix(TensorNames.blk(il, "ffn_down.weight"), e, config.feedForwardLength()));
        }
        this.outputNorm = weights.vector("output_norm.weight", e);
        this.output = TensorNames.output(weights, config, tokenEmbedding);
        this.ropeFactors = TensorNames.ropeFactors(weights, config);
    }

    private float[] bias(ModelWeights weights, int il, String name, int width) {
        return switch (variant.biases()) {
            case REQUIRED -> weights.vector(TensorNames.blk(il, name), width);
            case OPTIONAL -> weights.optionalVector(TensorNames.blk(il, name), width).orElse(null);
            case NONE -> null;
        };
    }

    private float[] qkNorm(ModelWeights weights, int il, String name) {
        return variant.qkNorm() ? weights.vector(TensorNames.blk(il, name), config.headDim()) : null;
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public ForwardGraph buildForward(int tokens, int past, Numerics numerics, StepShape.Output output) {
        ForwardGraph.Builder f = ForwardGraph.builder(config, tokens, past, numerics, ropeFactors, output);
        return f.build(logits(f));
    }

    @Override
    public StepGraph buildStep(StepShape shape, Numerics numerics) {
        ForwardGraph.Builder f = ForwardGraph.stepBuilder(config, shape, numerics, ropeFactors);
        return f.buildStep(logits(f));
    }

    @Override
    public StepGraph buildStep(StepShape shape, Numerics numerics, LayerRange range) {
        ForwardGraph.Builder f = ForwardGraph.stepBuilder(config, shape, numerics, ropeFactors, range);
        return f.buildStep(logits(f));
    }

    /**
     * The model's math, in order: embeddings, the blocks, the output norm and projection of the selected rows (an
     * embedding step stops after the norm). A graph of a layer range runs only its blocks, starting from the handed-over
     * residual stream and/or ending with it.
     */
    private Tensor logits(ForwardGraph.Builder f) {
        double kqScale = TensorNames.kqScale(config.headDim());
        Tensor x = f.rangeInput(tokenEmbedding);
        for (int il = f.layers.first(); il < f.layers.end(); il++) {
            Layer l = layers[il];
            Tensor h = f.rmsNorm(x, l.attnNorm());
            // projections (+ biases), per-head q/k norm where the variant has it, then RoPE
            Tensor q = f.heads(f.linear(h, l.wq(), l.bq()), config.headCount(), config.headDim());
            q = f.rope(l.qNorm() == null ? q : f.rmsNorm(q, l.qNorm()), variant.ropeMode());
            Tensor k = f.heads(f.linear(h, l.wk(), l.bk()), config.headCountKv(), config.headDim());
            k = f.rope(l.kNorm() == null ? k : f.rmsNorm(k, l.kNorm()), variant.ropeMode());
            Tensor v = f.heads(f.linear(h, l.wv(), l.bv()), config.headCountKv(), config.valueHeadDim());
            Tensor attn = f.attention(il, q, k, v, kqScale, 0, 0);
            x = x.add(f.linear(attn, l.wo(), l.bo()));

            h = f.rmsNorm(x, l.ffnNorm());
            Tensor gate = f.linear(h, l.gate()).silu();
            x = x.add(f.linear(gate.mul(f.linear(h, l.up())), l.down()));
        }
        if (f.residualOnly()) {
            return f.residualOutput(x);
        }
        Tensor last = f.rmsNorm(f.lastToken(x), outputNorm);
        return f.hiddenOutput() ? last : f.linear(last, output);
    }
}
