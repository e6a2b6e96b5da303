package aether.llm.arch;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.graph.Tensor;

/**
 * ggml's CPU-backend activation formats, written with graph ops so any executor reproduces them: the value each
 * activation has after ggml converts it to the weight's vec_dot_type and the kernel dequantizes the product's scale.
 * Every node of an f32 graph is rounded to float32, which the integer rounding below relies on.
 */
final class GgmlActivations {

    /**
     * 1.5 * 2^23: adding it to a float32 of magnitude below 2^22 leaves the nearest integer (ties to even) in the low
     * bits, and subtracting it again gives that integer exactly. This is ggml's {@code nearest_int} (Q8_K) and matches
     * {@code _mm256_round_ps(_MM_ROUND_NEAREST)} of its AVX2 Q8_0 quantizer.
     */
    private static final double ROUND_MAGIC = 12582912.0;

    /** ggml's GELU returns x unchanged from here up. */
    private static final double GELU_IDENTITY_FROM = 10.0;

    /** A floor for block maxima so that an all-zero block quantizes to zeros rather than 0 * inf. */
    private static final double TINY = 1e-30;

    private GgmlActivations() {}

    /** x[rows, n] as the vec_dot_type of a weight of type {@code weight} sees it. */
    static Tensor forWeight(Tensor x, GgmlType weight) {
        return switch (weight) {
            case F32, F64, I8, I16, I32, I64 -> x;
            case F16 -> x.cast(DType.F16).cast(DType.F32);
            case BF16 -> x.cast(DType.BF16).cast(DType.F32);
            case Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4, Q4_1, Q5_1, Q8_1 -> q8_0(x);
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, IQ4_XS,
                    TQ1_0, TQ2_0 -> q8_K(x);
        };
    }

    /**
     * ggml's GELU ({@code ggml_vec_gelu_f32} / {@code ggml_vec_geglu_f32} with GGML_GELU_FP16): x itself from 10 up,
     * below that a table of F16 results indexed by the F16 input (which also gives 0 from -10 down).
     */
    static Tensor gelu(Tensor x) {
        Tensor table = x.cast(DType.F16).gelu().cast(DType.F32);
        Tensor large = x.sub(GELU_IDENTITY_FROM).unary(Op.UnaryFn.STEP);        // 1 where x > 10 (at 10, both agree)
        return table.add(large.mul(x.sub(table)));
    }

    /**
     * quantize_row_q8_0 (AVX2 path) then dequantization: per block of 32, d = amax / 127 stored as F16, q =
     * round(x * (127 / amax)), value q * d.
     */
    static Tensor q8_0(Tensor x) {
        Tensor[] blocks = blocks(x, 32);
        Tensor b = blocks[0];
        Tensor amax = blocks[1];
        Tensor id = x.graph().scalar(127.0, DType.F32).div(amax.clamp(TINY, Float.MAX_VALUE));
        Tensor q = b.mul(id).add(ROUND_MAGIC).sub(ROUND_MAGIC);
        Tensor d = amax.div(127.0).cast(DType.F16).cast(DType.F32);
        return q.mul(d).reshape(x.shape());
    }

    /**
     * quantize_row_q8_K_ref then dequantization: per block of 256, iscale = 127 / amax (llama.cpp writes -127 / max
     * with max the signed element of largest magnitude: the same up to a sign that cancels), q = nearest_int(iscale *
     * x), d = 1 / iscale in float32, value q * d.
     */
    static Tensor q8_K(Tensor x) {
        Tensor[] blocks = blocks(x, 256);
        Tensor b = blocks[0];
        Tensor amax = blocks[1];
        Tensor iscale = x.graph().scalar(127.0, DType.F32).div(amax.clamp(TINY, Float.MAX_VALUE));
        Tensor q = b.mul(iscale).add(ROUND_MAGIC).sub(ROUND_MAGIC);
        Tensor d = x.graph().scalar(1.0, DType.F32).div(iscale);
        return q.mul(d).reshape(x.shape());
    }

    /** x[..., n] as blocks [..., n / size, size] and their maxima of |x| [..., n / size, 1]. */
    private static Tensor[] blocks(Tensor x, int size) {
        int n = x.shape().dim(-1);
        if (n % size != 0) {
            throw new IllegalArgumentException("activation rows of " + n + " do not split into blocks of " + size);
        }
        int[] dims = x.shape().dims();
        int[] blockDims = new int[dims.length + 1];
        System.arraycopy(dims, 0, blockDims, 0, dims.length - 1);
        blockDims[dims.length - 1] = n / size;
        blockDims[dims.length] = size;
        Tensor b = x.reshape(blockDims);
        return new Tensor[] {b, b.abs().max(-1, true)};
    }
}
