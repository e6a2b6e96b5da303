package aether.llm.arch;

import aether.llm.model.ModelConfig;
import aether.llm.model.ModelLoadException;
import aether.llm.model.ModelWeights;
import aether.runtime.ir.Op;
import aether.scheduler.exec.WeightRows;
import aether.scheduler.graph.Tensor;

/**
 * Phi-3 (llama.cpp {@code build_phi3}): pre-norm blocks with one fused QKV projection, rows {@code [Q (n_head·hd);
 * K (n_kv·hd); V (n_kv·hd)]}, NeoX RoPE, and a fused gate+up projection, rows {@code [gate (n_ff); up (n_ff)]}, with
 * {@code down(silu(gate) * up)}. Sliding-window attention stays off, as in llama.cpp at this commit ("Phi SWA is
 * currently disabled"). An optional {@code output.bias} is added to the logits, as llama.cpp does. LongRoPE models
 * (with {@code rope_factors_long/short}) are rejected.
 */
public final class Phi3Architecture implements Architecture {

    record Layer(float[] attnNorm, WeightRows wqkv, WeightRows wo, float[] ffnNorm, WeightRows gateUp,
            WeightRows down) {}

    private final ModelConfig config;
    private final WeightRows tokenEmbedding;
    private final Layer[] layers;
    private final float[] outputNorm;
    private final WeightRows output;
    private final float[] outputBias;
    private final float[] ropeFactors;

    Phi3Architecture(ModelConfig config, ModelWeights weights) {
        this.config = config;
        for (String longRope : new String[] {"rope_factors_long.weight", "rope_factors_short.weight"}) {
            if (weights.contains(longRope)) {
                throw new ModelLoadException(config.architecture(), "tensor '" + longRope + "': LongRoPE scaling"
                        + " is not supported (supported: phi3 without rope_factors_long/short)");
            }
        }
        this.tokenEmbedding = TensorNames.tokenEmbedding(weights, config);
        this.layers = new Layer[config.blockCount()];
        int e = config.embeddingLength();
        int qkvRows = config.queryWidth() + config.keyWidth() + config.valueWidth();
        for (int il = 0; il < layers.length; il++) {
            layers[il] = new Layer(
                    weights.vector(TensorNames.blk(il, "attn_norm.weight"), e),
                    weights.matrix(TensorNames.blk(il, "attn_qkv.weight"), qkvRows, e),
                    weights.matrix(TensorNames.blk(il, "attn_output.weight"), e,
                            config.headCount() * config.valueHeadDim()),
                    weights.vector(TensorNames.blk(il, "ffn_norm.weight"), e),
                    weights.matrix(TensorNames.blk(il, "ffn_up.weight"), 2 * config.feedForwardLength(), e),
                    weights.matrix(TensorNames.blk(il, "ffn_down.weight"), e, config.feedForwardLength()));
        }
        this.outputNorm = weights.vector("output_norm.weight", e);
        this.output = TensorNames.output(weights, config, tokenEmbedding);
        this.outputBias = weights.optionalVector("output.bias", config.vocabSize()).orElse(null);
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
        double kqScale = TensorNames.kqScale(config.headDim());
        int qw = config.queryWidth();
        int kw = config.keyWidth();
        int vw = config.valueWidth();
        int ff = config.feedForwardLength();
        Tensor x = f.embed(tokenEmbedding);
        for (int il = 0; il < layers.length; il++) {
            Layer l = layers[il];
            Tensor h = f.rmsNorm(x, l.attnNorm());
            Tensor qkv = f.linear(h, l.wqkv());                       // [tokens, Q | K | V]
            Tensor q = f.rope(f.heads(qkv.slice(1, 0, qw), config.headCount(), config.headDim()), Op.RopeMode.NEOX);
            Tensor k = f.rope(f.heads(qkv.slice(1, qw, qw + kw), config.headCountKv(), config.headDim()),
                    Op.RopeMode.NEOX);
            Tensor v = f.heads(qkv.slice(1, qw + kw, qw + kw + vw), config.headCountKv(), config.valueHeadDim());
            Tensor attn = f.attention(il, q, k, v, kqScale, 0, 0);
            x = x.add(f.linear(attn, l.wo()));

            h = f.rmsNorm(x, l.ffnNorm());
            Tensor gateUp = f.linear(h, l.gateUp());                  // [tokens, gate | up]
            Tensor gate = gateUp.slice(1, 0, ff).silu();
            x = x.add(f.linear(gate.mul(gateUp.slice(1, ff, 2 * ff)), l.down()));
        }
        Tensor last = f.rmsNorm(f.lastToken(x), outputNorm);
        return f.hiddenOutput() ? last : f.linear(last, output, outputBias);
    }
}
