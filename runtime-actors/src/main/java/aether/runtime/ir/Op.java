package aether.runtime.ir;

import java.util.List;

/**
 * A tensor operation: attributes only, never data or handles. Inputs are given by the {@link Node}; the result type is
 * computed by {@link TypeInference}. Axes stored here are already normalized (0-based, non-negative); the Graph API maps
 * {@code -1} and friends before it builds a node.
 */
public sealed interface Op {

    /** Short lower-case name for dumps and error messages ({@code matmul}, {@code rms_norm}, ...). */
    String name();

    // ---- leaves -------------------------------------------------------------------------------------------------

    /** A value bound at execution time: a parameter, an activation, token ids or a (quantized) weight. */
    record Input(String label, TensorType type) implements Op {
        public String name() { return "input"; }
    }

    /** A tensor filled with one value (seeds of backward, scalar operands). */
    record Full(double value, TensorType type) implements Op {
        public String name() { return "full"; }
    }

    /**
     * Additive attention mask of shape [queries, keys]: 0 where key j is visible to query i, -inf elsewhere. Query i sits
     * at absolute position {@code i + keys - queries} (the keys before it are a cache); it sees keys j at positions up to
     * its own, and with {@code window > 0} only the last {@code window} of them ({@code pos - j < window}).
     */
    record CausalMask(int queries, int keys, int window, DType dtype) implements Op {
        public String name() { return "causal_mask"; }
    }

    // ---- elementwise ---------------------------------------------------------------------------------------------

    enum UnaryFn {
        NEG, ABS, EXP, LOG, SQRT, RSQRT, TANH, SIGMOID, RELU,
        /** ggml's gelu: the tanh approximation 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))). */
        GELU,
        SILU,
        /** sign(x) in {-1, 0, 1}; derivative of abs, not differentiable itself. */
        SIGN,
        /** 1 where x > 0, else 0; derivative of relu, not differentiable itself. */
        STEP,
        /** d gelu(x)/dx for the tanh approximation; used by backward, not differentiable itself. */
        GELU_DERIV,
        /** d silu(x)/dx = s(1 + x(1 - s)) with s = sigmoid(x); used by backward, not differentiable itself. */
        SILU_DERIV
    }

    record Unary(UnaryFn fn) implements Op {
        public String name() { return fn.name().toLowerCase(java.util.Locale.ROOT); }
    }

    /** x^exponent elementwise. */
    record Pow(double exponent) implements Op {
        public String name() { return "pow"; }
    }

    /** min(max(x, min), max) elementwise. */
    record Clamp(double min, double max) implements Op {
        public String name() { return "clamp"; }
    }

    /** x * factor. */
    record Scale(double factor) implements Op {
        public String name() { return "scale"; }
    }

    enum BinaryFn {
        ADD, SUB, MUL, DIV,
        /** a^b elementwise. */
        POW,
        /** 1 where a == b, else 0; used by backward of max and clamp, not differentiable. */
        EQ
    }

    /** Elementwise with NumPy broadcasting; both operands share one floating dtype. */
    record Binary(BinaryFn fn) implements Op {
        public String name() { return fn.name().toLowerCase(java.util.Locale.ROOT); }
    }

    /** Cast between floating types (f32, f16, bf16, f64); rounds to nearest even. */
    record Cast(DType to) implements Op {
        public String name() { return "cast"; }
    }

    // ---- reductions ----------------------------------------------------------------------------------------------

    enum ReduceFn { SUM, MEAN, MAX }

    record Reduce(ReduceFn fn, int axis, boolean keepDims) implements Op {
        public String name() { return fn.name().toLowerCase(java.util.Locale.ROOT); }
    }

    /** Index of the first maximum along {@code axis}, as I32. */
    record ArgMax(int axis, boolean keepDims) implements Op {
        public String name() { return "argmax"; }
    }

    // ---- linear algebra and neural-network ops --------------------------------------------------------------------

    /**
     * Batched matrix product a[..., m, k] x b[..., k, n] -> [..., m, n] with broadcast batch dimensions. With {@code
     * transposeB} the right operand is b[..., n, k] (ggml's weight layout: one row per output feature) and the result is
     * a x b^T. A quantized right operand must be 2-D and is used in its block format.
     */
    record MatMul(boolean transposeB) implements Op {
        public String name() { return transposeB ? "matmul_t" : "matmul"; }
    }

    /**
     * Softmax over the last axis of {@code cap(x * scale) + mask}, where {@code cap(z) = softCap * tanh(z / softCap)}
     * when {@code softCap > 0} (Gemma-style soft-capping) and the optional second input {@code mask} broadcasts to x.
     * Numerically stable (the row maximum is subtracted). A row whose entries are all -inf (nothing visible) yields
     * zeros rather than NaN.
     */
    record Softmax(double scale, double softCap) implements Op {
        public String name() { return "softmax"; }
    }

    /** x / sqrt(mean(x^2) + eps) over the last axis (no weight: multiply separately, as ggml does). */
    record RmsNorm(double eps) implements Op {
        public String name() { return "rms_norm"; }
    }

    /** (x - mean(x)) / sqrt(var(x) + eps) over the last axis, biased variance, no affine part (ggml_norm). */
    record LayerNorm(double eps) implements Op {
        public String name() { return "layer_norm"; }
    }

    enum RopeMode {
        /** Rotates adjacent pairs (x[2i], x[2i+1]) (GPT-J / Llama in ggml's layout). */
        NORMAL,
        /** Rotates halves (x[i], x[i + nRot/2]) (GPT-NeoX, Qwen, Phi). */
        NEOX
    }

    /**
     * Rotary position embedding of x[..., tokens, heads, headDim] with positions I32[tokens] and optional frequency
     * factors f[nRot/2] (ggml_rope_ext's third input, e.g. Llama 3's rope_freqs). The first {@code nRot} dimensions of
     * each head are rotated by {@code theta_i = pos * freqScale * freqBase^(-2i/nRot) / f[i]}; the rest pass through.
     * A negative {@code freqScale} rotates backwards (the backward pass uses that). No YaRN (ext_factor 0). Positions
     * and factors are constants for autograd.
     */
    record Rope(RopeMode mode, int nRot, double freqBase, double freqScale) implements Op {
        public String name() { return "rope"; }
    }

    /** Rows of table[rows, cols] (float or quantized) selected by I32 ids[...] -> [..., cols]. */
    record GetRows() implements Op {
        public String name() { return "get_rows"; }
    }

    /** Backward of get_rows: src[..., cols] added into a zero [rows, cols] at the rows named by ids[...]. */
    record ScatterAddRows(int rows) implements Op {
        public String name() { return "scatter_add_rows"; }
    }

    /**
     * Causal scaled dot-product attention: q[..., hq, tq, d], k[..., hkv, tk, d], v[..., hkv, tk, dv] -> [..., hq, tq,
     * dv], softmax(cap(q k^T * scale) + causalMask) v with the mask of {@link CausalMask} and {@code cap} the soft-capping
     * of {@link Softmax} ({@code softCap} 0 = off; Gemma 2 uses 50). Grouped-query attention: query head h reads
     * key/value head {@code h / (hq / hkv)}.
     */
    record Attention(double scale, int window, double softCap) implements Op {
        public String name() { return "attention"; }
    }

    /**
     * Writes this step's key or value rows into a paged KV cache: {@code cache[slots, width]} (f32, f16 or q8_0, one
     * row per cached position of every sequence, blocks of positions owned by sequences), {@code rows f32[tokens,
     * width]} and {@code slots I32[tokens]}; row t goes to cache row {@code slots[t]}, rounded to the cache's type (q8_0:
     * ggml's quantize_row_q8_0 per 32 values). The result is the cache after the write: an executor updates the bound
     * cache in place, and readers of the result (a {@link PagedAttention}) are thereby ordered after the write.
     */
    record KvStore() implements Op {
        public String name() { return "kv_store"; }
    }

    /**
     * Causal attention of this step's queries over a paged KV cache: q f32[tokens, hq, d], kCache[slots, kvHeads * d],
     * vCache[slots, kvHeads * dv] (results of {@link KvStore}, so this step's keys are already in), positions
     * I32[tokens] (token t's position in its own sequence) and blockTable I32[tokens, blocks] (token t's sequence's
     * blocks, in order: position p lives in cache row {@code blockTable[t][p / blockSize] * blockSize + p %
     * blockSize}). Token t attends to positions {@code 0..positions[t]} of its sequence (with {@code window > 0} only
     * those with {@code positions[t] - p < window}), softmax(cap(q k^T * scale)) v with {@code cap} as in {@link
     * Softmax}; query head h reads kv head {@code h / (hq / kvHeads)}. Result f32[tokens, hq, dv].
     */
    record PagedAttention(int kvHeads, double scale, int window, double softCap, int blockSize) implements Op {
        public String name() { return "paged_attention"; }
    }

    // ---- layout ---------------------------------------------------------------------------------------------------

    /** Same elements in row-major order, new dimensions. */
    record Reshape(Shape shape) implements Op {
        public String name() { return "reshape"; }
    }

    /** Output dimension i is input dimension axes[i]. */
    record Permute(List<Integer> axes) implements Op {
        public Permute {
            axes = List.copyOf(axes);
        }

        public String name() { return "permute"; }
    }

    /** Broadcast to {@code shape} (NumPy broadcast_to). */
    record Expand(Shape shape) implements Op {
        public String name() { return "expand"; }
    }

    /** Join all inputs along {@code axis}; every other dimension must agree. */
    record Concat(int axis) implements Op {
        public String name() { return "concat"; }
    }

    /** Elements {@code start} (inclusive) to {@code end} (exclusive) of dimension {@code axis}. */
    record Slice(int axis, int start, int end) implements Op {
        public String name() { return "slice"; }
    }

    /** Zero padding of dimension {@code axis}: {@code before} zeros, the input, {@code after} zeros. */
    record Pad(int axis, int before, int after) implements Op {
        public String name() { return "pad"; }
    }
}
