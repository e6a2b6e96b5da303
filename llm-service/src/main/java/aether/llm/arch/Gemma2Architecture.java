package aether.llm.arch;

import aether.llm.model.ModelConfig;
import aether.llm.model.ModelWeights;
import aether.runtime.ir.Op;
import aether.scheduler.exec.WeightRows;
import aether.scheduler.graph.Tensor;

/**
 * Gemma 2 (llama.cpp {@code build_gemma2_iswa}): embeddings scaled by sqrt(n_embd); each block normalizes both the
 * input and the output of attention and of the feed-forward network ({@code post_attention_norm}, {@code
 * post_ffw_norm}); attention scores are soft-capped ({@code attn_logit_softcapping}) after scaling and before the mask;
 * layers with an even index use sliding-window attention; the FFN is {@code down(gelu(gate) * up)} (tanh GELU); the
 * output is tied to the token embeddings and its logits soft-capped ({@code final_logit_softcapping}). NeoX RoPE.
 */
public final class Gemma2Architecture implements Architecture {

    /** llama.cpp scales queries by 1/sqrt(n_embd / n_head) rather than 1/sqrt(head_dim) for the 46-layer 27B. */
    private static final int GEMMA2_27B_LAYERS = 46;

    record Layer(float[] attnNorm, WeightRows wq, WeightRows wk, WeightRows wv, WeightRows wo, float[] postAttnNorm,
            float[] ffnNorm, WeightRows gate, WeightRows up, WeightRows down, float[] postFfnNorm) {}

    private final ModelConfig config;
    private final WeightRows tokenEmbedding;
    private final Layer[] layers;
    private final float[] outputNorm;
    private final float[] ropeFactors;

    Gemma2Architecture(ModelConfig config, ModelWeights weights) {
        this.config = config;
        this.tokenEmbedding = TensorNames.tokenEmbedding(weights, config);
        this.layers = new Layer[config.blockCount()];
        int e = config.embeddingLength();
        for (int il = 0; il < layers.length; il++) {
            layers[il] = new Layer(
                    weights.vector(TensorNames.blk(il, "attn_norm.weight"), e),
                    weights.matrix(TensorNames.blk(il, "attn_q.weight"), config.queryWidth(), e),
                    weights.matrix(TensorNames.blk(il, "attn_k.weight"), config.keyWidth(), e),
                    weights.matrix(TensorNames.blk(il, "attn_v.weight"), config.valueWidth(), e),
                    weights.matrix(TensorNames.blk(il, "attn_output.weight"), e,
                            config.headCount() * config.valueHeadDim()),
                    weights.vector(TensorNames.blk(il, "post_attention_norm.weight"), e),
                    weights.vector(TensorNames.blk(il, "ffn_norm.weight"), e),
                    weights.matrix(TensorNames.blk(il, "ffn_gate.weight"), config.feedForwardLength(), e),
                    weights.matrix(TensorNames.blk(il, "ffn_up.weight"), config.feedForwardLength(), e),
                    weights.matrix(TensorNames.blk(il, "ffn_down.weight"), e, config.feedForwardLength()),
                    weights.vector(TensorNames.blk(il, "post_ffw_norm.weight"), e));
        }
        this.outputNorm = weights.vector("output_norm.weight", e);
        this.ropeFactors = TensorNames.ropeFactors(weights, config);
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

    /**
     * The model's math, in order: embeddings, the blocks, the output norm and projection of the selected rows (an
     * embedding step stops after the norm).
     */
    private Tensor logits(ForwardGraph.Builder f) {
        double kqScale = config.blockCount() == GEMMA2_27B_LAYERS
                ? TensorNames.kqScale(config.embeddingLength() / config.headCount())
                : TensorNames.kqScale(config.headDim());
        Tensor x = f.embed(tokenEmbedding).scale((float) Math.sqrt(config.embeddingLength()));
        for (int il = 0; il < layers.length; il++) {
            Layer l = layers[il];
            Tensor h = f.rmsNorm(x, l.attnNorm());
            Tensor q = f.rope(f.heads(f.linear(h, l.wq()), config.headCount(), config.headDim()), Op.RopeMode.NEOX);
            Tensor k = f.rope(f.heads(f.linear(h, l.wk()), config.headCountKv(), config.headDim()), Op.RopeMode.NEOX);
            Tensor v = f.heads(f.linear(h, l.wv()), config.headCountKv(), config.valueHeadDim());
            int window = il % 2 == 0 ? config.slidingWindow() : 0;
            Tensor attn = f.attention(il, q, k, v, kqScale, window, config.attentionSoftCap());
            x = x.add(f.rmsNorm(f.linear(attn, l.wo()), l.postAttnNorm()));

            h = f.rmsNorm(x, l.ffnNorm());
            Tensor gate = f.gelu(f.linear(h, l.gate()));
            Tensor ffn = f.linear(gate.mul(f.linear(h, l.up())), l.down());
            x = x.add(f.rmsNorm(ffn, l.postFfnNorm()));
        }
        Tensor last = f.rmsNorm(f.lastToken(x), outputNorm);
        if (f.hiddenOutput()) {
            return last;   // an embedding step: no LM head, no soft-capping
        }
        Tensor logits = f.linear(last, tokenEmbedding);
        double cap = config.finalSoftCap();
        return cap > 0 ? logits.scale(1 / cap).tanh().scale(cap) : logits;
    }
}
