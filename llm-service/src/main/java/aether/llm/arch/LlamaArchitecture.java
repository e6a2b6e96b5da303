package aether.llm.arch;

import aether.llm.model.ModelConfig;
import aether.llm.model.ModelWeights;
import aether.runtime.ir.Op;
import aether.scheduler.exec.WeightRows;
import aether.scheduler.graph.Tensor;

/**
 * Llama 2/3/3.1/3.2 and Mistral (llama.cpp {@code build_llama}): pre-norm blocks of grouped-query attention with
 * "normal" RoPE (adjacent pairs) and a SwiGLU feed-forward network. Llama 3.1's frequency-dependent RoPE scaling
 * comes as the optional {@code rope_freqs.weight} tensor; optional q/k/v/o biases are applied as llama.cpp does; the
 * output matrix falls back to the token embeddings when the file has no {@code output.weight} (tied embeddings).
 */
public final class LlamaArchitecture implements Architecture {

    /** One block's tensors; the biases are null when absent. */
    record Layer(float[] attnNorm, WeightRows wq, float[] bq, WeightRows wk, float[] bk, WeightRows wv, float[] bv,
            WeightRows wo, float[] bo, float[] ffnNorm, WeightRows gate, WeightRows up, WeightRows down) {}

    private final ModelConfig config;
    private final WeightRows tokenEmbedding;
    private final Layer[] layers;
    private final float[] outputNorm;
    private final WeightRows output;
    private final float[] ropeFactors;

    LlamaArchitecture(ModelConfig config, ModelWeights weights) {
        this.config = config;
        this.tokenEmbedding = TensorNames.tokenEmbedding(weights, config);
        this.layers = new Layer[config.blockCount()];
        int e = config.embeddingLength();
        for (int il = 0; il < layers.length; il++) {
            layers[il] = new Layer(
                    weights.vector(TensorNames.blk(il, "attn_norm.weight"), e),
                    weights.matrix(TensorNames.blk(il, "attn_q.weight"), config.queryWidth(), e),
                    weights.optionalVector(TensorNames.blk(il, "attn_q.bias"), config.queryWidth()).orElse(null),
                    weights.matrix(TensorNames.blk(il, "attn_k.weight"), config.keyWidth(), e),
                    weights.optionalVector(TensorNames.blk(il, "attn_k.bias"), config.keyWidth()).orElse(null),
                    weights.matrix(TensorNames.blk(il, "attn_v.weight"), config.valueWidth(), e),
                    weights.optionalVector(TensorNames.blk(il, "attn_v.bias"), config.valueWidth()).orElse(null),
                    weights.matrix(TensorNames.blk(il, "attn_output.weight"), e,
                            config.headCount() * config.valueHeadDim()),
                    weights.optionalVector(TensorNames.blk(il, "attn_output.bias"), e).orElse(null),
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
            Tensor q = f.rope(f.heads(f.linear(h, l.wq(), l.bq()), config.headCount(), config.headDim()),
                    Op.RopeMode.NORMAL);
            Tensor k = f.rope(f.heads(f.linear(h, l.wk(), l.bk()), config.headCountKv(), config.headDim()),
                    Op.RopeMode.NORMAL);
            Tensor v = f.heads(f.linear(h, l.wv(), l.bv()), config.headCountKv(), config.valueHeadDim());
            Tensor attn = f.attention(il, q, k, v, kqScale, 0, 0);
            x = x.add(f.linear(attn, l.wo(), l.bo()));

            h = f.rmsNorm(x, l.ffnNorm());
            Tensor gate = f.linear(h, l.gate()).silu();
            x = x.add(f.linear(gate.mul(f.linear(h, l.up())), l.down()));
        }
        Tensor last = f.rmsNorm(f.lastToken(x), outputNorm);
        return f.build(f.linear(last, output));
    }
}
