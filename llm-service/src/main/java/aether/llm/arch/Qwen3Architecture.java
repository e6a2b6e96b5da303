package aether.llm.arch;

import aether.llm.model.ModelConfig;
import aether.llm.model.ModelWeights;
import aether.runtime.ir.Op;
import aether.scheduler.exec.WeightRows;
import aether.scheduler.graph.Tensor;

/**
 * Qwen 3 dense (llama.cpp {@code build_qwen3}): Llama's block without biases, with an RMSNorm over each head of Q and
 * of K ({@code attn_q_norm}/{@code attn_k_norm}, weights [head_dim], the model's eps) before NeoX RoPE. Tied
 * embeddings when the file has no {@code output.weight}.
 */
public final class Qwen3Architecture implements Architecture {

    record Layer(float[] attnNorm, WeightRows wq, float[] qNorm, WeightRows wk, float[] kNorm, WeightRows wv,
            WeightRows wo, float[] ffnNorm, WeightRows gate, WeightRows up, WeightRows down) {}

    private final ModelConfig config;
    private final WeightRows tokenEmbedding;
    private final Layer[] layers;
    private final float[] outputNorm;
    private final WeightRows output;
    private final float[] ropeFactors;

    Qwen3Architecture(ModelConfig config, ModelWeights weights) {
        this.config = config;
        this.tokenEmbedding = TensorNames.tokenEmbedding(weights, config);
        this.layers = new Layer[config.blockCount()];
        int e = config.embeddingLength();
        for (int il = 0; il < layers.length; il++) {
            layers[il] = new Layer(
                    weights.vector(TensorNames.blk(il, "attn_norm.weight"), e),
                    weights.matrix(TensorNames.blk(il, "attn_q.weight"), config.queryWidth(), e),
                    weights.vector(TensorNames.blk(il, "attn_q_norm.weight"), config.headDim()),
                    weights.matrix(TensorNames.blk(il, "attn_k.weight"), config.keyWidth(), e),
                    weights.vector(TensorNames.blk(il, "attn_k_norm.weight"), config.headDim()),
                    weights.matrix(TensorNames.blk(il, "attn_v.weight"), config.valueWidth(), e),
                    weights.matrix(TensorNames.blk(il, "attn_output.weight"), e,
                            config.headCount() * config.valueHeadDim()),
                    weights.vector(TensorNames.blk(il, "ffn_norm.weight"), e),
                    weights.matrix(TensorNames.blk(il, "ffn_gate.weight"), config.feedForwardLength(), e),
                    weights.matrix(TensorNames.blk(il, "ffn_up.weight"), config.feedForwardLength(), e),
                    weights.matrix(TensorNames.blk(il, "ffn_down.weight"), e, config.feedForwardLength()));
        }
        this.outputNorm = weights.vector("output_norm.weight", e);
        this.output = TensorNames.output(weights, config, tokenEmbedding);
        this.ropeFactors = TensorNames.ropeFactors(weights, config);
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public ForwardGraph buildForward(int tokens, int past, Numerics numerics) {
        ForwardGraph.Builder f = ForwardGraph.builder(config, tokens, past, numerics, ropeFactors);
        double kqScale = TensorNames.kqScale(config.headDim());
        Tensor x = f.embed(tokenEmbedding);
        for (int il = 0; il < layers.length; il++) {
            Layer l = layers[il];
            Tensor h = f.rmsNorm(x, l.attnNorm());
            // per-head RMSNorm over head_dim, then RoPE
            Tensor q = f.heads(f.linear(h, l.wq()), config.headCount(), config.headDim());
            q = f.rope(f.rmsNorm(q, l.qNorm()), Op.RopeMode.NEOX);
            Tensor k = f.heads(f.linear(h, l.wk()), config.headCountKv(), config.headDim());
            k = f.rope(f.rmsNorm(k, l.kNorm()), Op.RopeMode.NEOX);
            Tensor v = f.heads(f.linear(h, l.wv()), config.headCountKv(), config.valueHeadDim());
            Tensor attn = f.attention(il, q, k, v, kqScale, 0, 0);
            x = x.add(f.linear(attn, l.wo()));

            h = f.rmsNorm(x, l.ffnNorm());
            Tensor gate = f.linear(h, l.gate()).silu();
            x = x.add(f.linear(gate.mul(f.linear(h, l.up())), l.down()));
        }
        Tensor last = f.rmsNorm(f.lastToken(x), outputNorm);
        return f.build(f.linear(last, output));
    }
}
