package aether.llm.arch;

/**
 * How a forward graph rounds activations where llama.cpp's CPU backend does. The weights are the same either way; what
 * differs is what the activations look like when they meet them.
 */
public enum Numerics {

    /** Activations stay float32 everywhere: the float reference, and what an executor that quantizes inside its kernels wants. */
    FLOAT32,

    /**
     * As ggml's CPU backend computes (llama.cpp's goldens): before a matmul with a stored weight, the activations are
     * converted to the weight type's "vec_dot_type" — F16 for F16 weights, BF16 for BF16, Q8_0 for Q4_0/Q5_0/Q8_0/
     * IQ4_NL/MXFP4, Q8_1 for Q4_1/Q5_1 (emulated as Q8_0: same values, without the block-sum term), Q8_K for the
     * K-quants and the other IQ types — and GELU goes through ggml's F16 table (input and output rounded to F16). The
     * random-weight goldens are chaotic enough that without this, quantized models generate other ids after a few steps
     * (the activation quantization moves log-probs by up to ~0.7).
     */
    GGML_CPU
}
