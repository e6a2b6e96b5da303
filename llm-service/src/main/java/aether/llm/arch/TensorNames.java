package aether.llm.arch;

import aether.llm.model.ModelConfig;
import aether.llm.model.ModelWeights;
import aether.scheduler.exec.WeightRows;

/** GGUF tensor names (llama.cpp's LLM_TENSOR_*) and the lookups every architecture shares. */
final class TensorNames {

    private TensorNames() {}

    /** {@code blk.<layer>.<name>}. */
    static String blk(int layer, String name) {
        return "blk." + layer + "." + name;
    }

    static WeightRows tokenEmbedding(ModelWeights w, ModelConfig c) {
        return w.matrix("token_embd.weight", c.vocabSize(), c.embeddingLength());
    }

    /** {@code output.weight}, or the token embeddings when the model ties them (no output matrix in the file). */
    static WeightRows output(ModelWeights w, ModelConfig c, WeightRows tokenEmbedding) {
        return w.optionalMatrix("output.weight", c.vocabSize(), c.embeddingLength()).orElse(tokenEmbedding);
    }

    /** Llama 3 RoPE frequency factors {@code rope_freqs.weight[n_rot/2]}, or null. */
    static float[] ropeFactors(ModelWeights w, ModelConfig c) {
        return w.optionalVector("rope_freqs.weight", c.ropeDimensions() / 2).orElse(null);
    }

    /** 1/sqrt(d) computed in float, as llama.cpp's {@code 1.0f/sqrtf(float(n_embd_head))}. */
    static double kqScale(int d) {
        return 1.0f / (float) Math.sqrt(d);
    }
}
