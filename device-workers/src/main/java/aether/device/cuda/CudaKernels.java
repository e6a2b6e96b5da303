package aether.device.cuda;

import aether.runtime.tensor.GgmlType;
import jcuda.driver.CUdeviceptr;

/**
 * Typed launchers for the kernels of {@code aether_kernels.cu}: the shapes each kernel expects are checked here, the
 * grid is chosen here, and the launch goes on the context's stream (asynchronous; capture-safe: nothing here
 * synchronizes). Per-token values are read by the kernels from the {@code params} device buffer: int[{@value
 * #PARAM_WORDS}] = token id, position, sequence slot, unused, then the {@value #BATCH} token ids of a prompt chunk
 * ({@link #chunkTokens}). The kernels with a {@code tokens} argument run a chunk of that many tokens at positions
 * position + t in one launch; a decode step is the chunk of one.
 */
public final class CudaKernels {

    public static final int PARAM_TOKEN = 0;
    public static final int PARAM_POS = 1;
    public static final int PARAM_SLOT = 2;
    /** Most tokens of a prompt chunk; must match BATCH in the .cu file. */
    public static final int BATCH = 8;
    public static final int PARAM_CHUNK = 4;
    public static final int PARAM_WORDS = PARAM_CHUNK + BATCH;

    /** Rows per GEMV block (one warp per row); must match GEMV_WARPS in the .cu file. */
    static final int GEMV_WARPS = 8;
    /** Warps (two rows each) per block of the chunk GEMV; must match GEMV_BATCH_WARPS. */
    static final int GEMV_BATCH_WARPS = 4;
    /** Threads of an attention block; must match ATTN_THREADS. */
    static final int ATTN_THREADS = 128;

    private final CudaContext cuda;

    /** Every kernel of the module, loaded at construction so none loads lazily inside a graph capture. */
    static final String[] KERNELS = {"repack_q4_0", "repack_q8_0", "quantize_q8_1", "rmsnorm_quant", "swiglu_quant",
        "add_f32", "gemv_q4_0", "gemv_q8_0", "gemv_f16", "gemv_bf16", "gemv_batch_q4_0", "gemv_batch_q8_0",
        "gemv_batch_f16", "gemv_batch_bf16", "rope_kv", "attn_split", "attn_combine", "get_row_q4_0", "get_row_q8_0",
        "get_row_f16", "get_row_bf16", "get_row_f32", "argmax_rows", "sample_candidates",
        // Q4_K / Q6_K (kquants.cuh)
        "repack_q4_k", "repack_q6_k", "gemv_q4_k", "gemv_q6_k", "get_row_q4_k", "get_row_q6_k",
        // the fused decode GEMVs (fused_decode.cuh)
        "gemv_q4_0_norm", "gemv_q4_0_swiglu", "gemv_q4_0_rope", "gemv_q8_0_norm", "gemv_q8_0_swiglu", "gemv_q8_0_rope",
        "gemv_f16_norm", "gemv_f16_swiglu", "gemv_f16_rope", "gemv_q4_k_norm", "gemv_q4_k_swiglu", "gemv_q4_k_rope",
        "gemv_q6_k_norm", "gemv_q6_k_swiglu", "gemv_q6_k_rope", "gemv_bf16_norm", "gemv_bf16_swiglu", "gemv_bf16_rope",
        "gemv_q4_0_swiglu_rows"};

    public CudaKernels(CudaContext cuda) {
        this.cuda = cuda;
        cuda.preload(KERNELS);
    }

    public CudaContext context() {
        return cuda;
    }

    private static int blocks(long n, int per) {
        return (int) ((n + per - 1) / per);
    }

    /** The token ids of a prompt chunk inside {@code params} (words {@value #PARAM_CHUNK}..). */
    public static CUdeviceptr chunkTokens(CUdeviceptr params) {
        return params.withByteOffset(PARAM_CHUNK * Integer.BYTES);
    }

    private static void checkTokens(int tokens) {
        if (tokens < 1 || tokens > BATCH) {
            throw new IllegalArgumentException("chunk of " + tokens + " tokens (expected 1.." + BATCH + ")");
        }
    }

    /** {@code out} = q8_1 blocks of x[n]. */
    public void quantize(CUdeviceptr x, QuantizedVector out) {
        cuda.launch("quantize_q8_1", blocks(out.length(), 256), 1, 256, 0, x, out.quants(), out.scales(), out.length());
    }

    /** RMSNorm of x[n] times w[n]: floats to {@code h} (may be null) and quantized to {@code q} (may be null). */
    public void rmsNorm(CUdeviceptr x, CUdeviceptr w, CUdeviceptr h, QuantizedVector q, int n, float eps) {
        rmsNorm(x, w, h, q, n, eps, 1);
    }

    /** {@link #rmsNorm} of each of {@code tokens} rows of n (q holding tokens * n). */
    public void rmsNorm(CUdeviceptr x, CUdeviceptr w, CUdeviceptr h, QuantizedVector q, int n, float eps, int tokens) {
        checkTokens(tokens);
        if (n % 32 != 0 || (q != null && q.length() < n * tokens)) {
            throw new IllegalArgumentException("rmsnorm of " + n + " elements (expected a multiple of 32"
                    + (q == null ? "" : " and a quantized output of the same length, got " + q.length()) + ")");
        }
        cuda.launch("rmsnorm_quant", blocks(n, 256), tokens, 256, 0, x, w, h, q == null ? null : q.quants(),
                q == null ? null : q.scales(), n, eps);
    }

    /**
     * y[M] = W . x (+ add[M]; {@code add} may be {@code y} itself). Quantized matrices read {@code xq}, float ones
     * read {@code x}; the other may be null.
     */
    public void gemv(GpuMatrix w, CUdeviceptr x, QuantizedVector xq, CUdeviceptr add, CUdeviceptr y) {
        if (w.isStacked()) {  // parts of different types: one launch per part, each into its rows of y
            long row = 0;
            for (GpuMatrix part : w.parts()) {
                gemv(part, x, xq, add == null ? null : add.withByteOffset(row * 4), y.withByteOffset(row * 4));
                row += part.rows();
            }
            return;
        }
        int split = gemvSplit(w.rows(), gemvUnits(w.type(), w.cols()), cuda.multiprocessors());
        int grid = blocks(w.rows(), GEMV_WARPS / split);
        switch (w.type()) {
            case Q4_0, Q8_0, Q4_K, Q6_K -> {
                if (xq == null || xq.length() != w.cols()) {
                    throw new IllegalArgumentException("GEMV " + w.rows() + " x " + w.cols() + " " + w.type()
                            + " needs a quantized activation of " + w.cols() + " elements, got "
                            + (xq == null ? "none" : xq.length()));
                }
                String kernel = switch (w.type()) {
                    case Q4_0 -> "gemv_q4_0";
                    case Q8_0 -> "gemv_q8_0";
                    case Q4_K -> "gemv_q4_k";
                    default -> "gemv_q6_k";
                };
                cuda.launch(kernel, grid, 1, GEMV_WARPS * 32, 0,
                        w.quants(), w.scales(), xq.quants(), xq.scales(), add, y, w.rows(), w.cols(), split);
            }
            case F16, BF16 -> {
                if (x == null) {
                    throw new IllegalArgumentException("GEMV of an " + w.type() + " matrix needs the float activation");
                }
                cuda.launch(halfKernel("gemv", w.type()), grid, 1, GEMV_WARPS * 32, 0, w.quants(), x, add, y,
                        w.rows(), w.cols(), split);
            }
            default -> throw new IllegalArgumentException("GEMV of a " + w.type() + " matrix (expected Q4_0, Q8_0, "
                    + "Q4_K, Q6_K, F16, BF16)");
        }
    }

    /**
     * Y[t] = W . X[t] (+ add[t]; {@code add} may be {@code y}) for t &lt; tokens, rows of W.rows() in Y and of W.cols()
     * in X: one pass over the weights for the whole chunk. Quantized matrices read {@code xq} (tokens * cols
     * elements), F16 and BF16 ones {@code x}.
     */
    public void gemvBatch(GpuMatrix w, CUdeviceptr x, QuantizedVector xq, CUdeviceptr add, CUdeviceptr y, int tokens) {
        checkTokens(tokens);
        if (w.isStacked()) {
            throw new IllegalArgumentException("chunk GEMV of a stacked matrix of mixed types (the prefill GEMM runs it)");
        }
        int grid = blocks(w.rows(), GEMV_BATCH_WARPS * 2);
        switch (w.type()) {
            case Q4_0, Q8_0 -> {
                if (xq == null || xq.length() < (long) w.cols() * tokens) {
                    throw new IllegalArgumentException("chunk GEMV " + w.rows() + " x " + w.cols() + " " + w.type()
                            + " needs quantized activations of " + tokens + " x " + w.cols() + " elements, got "
                            + (xq == null ? "none" : xq.length()));
                }
                cuda.launch(w.type() == GgmlType.Q4_0 ? "gemv_batch_q4_0" : "gemv_batch_q8_0", grid, 1,
                        GEMV_BATCH_WARPS * 32, 0, w.quants(), w.scales(), xq.quants(), xq.scales(), add, y, w.rows(),
                        w.cols(), tokens);
            }
            case F16, BF16 -> {
                if (x == null) {
                    throw new IllegalArgumentException("chunk GEMV of an " + w.type()
                            + " matrix needs the float activations");
                }
                cuda.launch(halfKernel("gemv_batch", w.type()), grid, 1, GEMV_BATCH_WARPS * 32, 0, w.quants(), x, add,
                        y, w.rows(), w.cols(), tokens);
            }
            default -> throw new IllegalArgumentException("GEMV of a " + w.type() + " matrix (expected Q4_0, Q8_0, F16, "
                    + "BF16)");
        }
    }

    // ---- fused decode GEMVs (fused_decode.cuh): the GEMV, then the next small kernel in its last blocks ----------

    /**
     * Arrival counters of the fused decode GEMVs: {@code length} 32-bit words, zeroed at allocation; each launch zeroes
     * again what it counted (the block that completes a count). One set per stream of launches: two fused GEMVs that
     * could run at once must not share counters.
     */
    public record FusionCounters(CUdeviceptr words, int length) {
        public static FusionCounters allocate(CudaContext cuda, int length) {
            if (length < 1) {
                throw new IllegalArgumentException("fusion counters of " + length + " words (expected 1+)");
            }
            CUdeviceptr p = cuda.alloc((long) length * Integer.BYTES);
            cuda.fill32(p, 0, length);
            return new FusionCounters(p, length);
        }

        public void free(CudaContext cuda) {
            cuda.free(words, (long) length * Integer.BYTES);
        }
    }

    /**
     * Whether the fused decode GEMVs read {@code w}: one matrix (not {@link GpuMatrix#isStacked() stacked} from parts
     * of different types) of Q4_0, Q8_0, F16, BF16, Q4_K or Q6_K. Other matrices take the plain GEMV and the separate kernel.
     */
    public static boolean fusable(GpuMatrix w) {
        return !w.isStacked() && switch (w.type()) {
            case Q4_0, Q8_0, F16, BF16, Q4_K, Q6_K -> true;
            default -> false;
        };
    }

    /**
     * {@link #gemv} (y = W . x + add; add may be y) then {@link #rmsNorm} of y times {@code normWeight} into {@code h}
     * (may be null) and {@code hq}, in one launch: the block that finishes last normalizes. Same results, bit for bit.
     */
    public void gemvNorm(GpuMatrix w, CUdeviceptr x, QuantizedVector xq, CUdeviceptr add, CUdeviceptr y,
            FusionCounters counters, CUdeviceptr normWeight, CUdeviceptr h, QuantizedVector hq, float eps) {
        if (w.rows() % 32 != 0 || hq == null || hq.length() < w.rows()) {
            throw new IllegalArgumentException("GEMV + RMSNorm of " + w.rows() + " rows (expected a multiple of 32 and "
                    + "a quantized output of that length, got " + (hq == null ? "none" : hq.length()) + ")");
        }
        fused(w, "norm", x, xq, add, y, counters, 1, normWeight, h, hq.quants(), hq.scales(), eps);
    }

    /**
     * {@link #gemv} of W = [gate | up] (2 * ffn rows) into {@code gu}, then {@link #swiglu} of it into {@code out}
     * (may be null) and {@code q}, in one launch: the last block of each 32 gate and 32 up rows finishes them.
     */
    public void gemvSwiglu(GpuMatrix w, CUdeviceptr x, QuantizedVector xq, CUdeviceptr gu, FusionCounters counters,
            CUdeviceptr out, QuantizedVector q) {
        int ffn = w.rows() / 2;
        if (w.rows() % 64 != 0 || q == null || q.length() < ffn) {
            throw new IllegalArgumentException("GEMV + SwiGLU of " + w.rows() + " rows (expected 2 x a multiple of 32 "
                    + "and a quantized output of half of them, got " + (q == null ? "none" : q.length()) + ")");
        }
        fused(w, "swiglu", x, xq, null, gu, counters, ffn / 32, out, q.quants(), q.scales());
    }

    /**
     * Whether {@link #gemvSwigluRows} takes this gate|up matrix: one Q4_0 matrix of 2 x a multiple of 32 rows that the
     * plain GEMV runs one warp a row (split 1), so the results are its bits.
     */
    public boolean swigluRowsFusable(GpuMatrix w) {
        return !w.isStacked() && w.type() == GgmlType.Q4_0 && w.rows() % 64 == 0
                && gemvSplit(w.rows(), w.cols() / 32, cuda.multiprocessors()) == 1;
    }

    /**
     * {@link #gemvSwiglu} without arrival counters: one block per 32 SwiGLU outputs computes their 32 gate and 32 up
     * rows itself ({@code gemv_q4_0_swiglu_rows}); only where {@link #swigluRowsFusable}.
     */
    public void gemvSwigluRows(GpuMatrix w, QuantizedVector xq, CUdeviceptr gu, CUdeviceptr out, QuantizedVector q) {
        int ffn = w.rows() / 2;
        if (!swigluRowsFusable(w)) {
            throw new IllegalArgumentException("GEMV + SwiGLU by rows of a " + w.type() + " " + w.rows() + " x "
                    + w.cols() + " matrix (expected one Q4_0 matrix of 2 x a multiple of 32 rows, one warp a row)");
        }
        if (xq == null || xq.length() != w.cols() || q == null || q.length() < ffn) {
            throw new IllegalArgumentException("GEMV + SwiGLU by rows of " + w.rows() + " x " + w.cols() + " needs a "
                    + "quantized activation of " + w.cols() + " and a quantized output of " + ffn + " elements");
        }
        cuda.launch("gemv_q4_0_swiglu_rows", ffn / 32, 1, GEMV_WARPS * 32, 0, w.quants(), w.scales(), xq.quants(),
                xq.scales(), gu, ffn, w.cols(), out, q.quants(), q.scales());
    }

    /**
     * {@link #gemv} of the stacked q|k|v matrix into {@code qkv}, then {@link #ropeKv} (one token), in one launch: the
     * last block of each head's rows rotates it and stores k and v into the cache.
     */
    public void gemvRope(GpuMatrix w, CUdeviceptr x, QuantizedVector xq, CUdeviceptr qkv, FusionCounters counters,
            AttentionShape s, CUdeviceptr kcache, CUdeviceptr vcache, CUdeviceptr params, CUdeviceptr freqFactors) {
        if (!ropeFusable(s) || w.rows() != (s.heads() + 2 * s.kvHeads()) * s.headDim()) {
            throw new IllegalArgumentException("GEMV + RoPE of " + w.rows() + " rows for " + s.heads() + "/" + s.kvHeads()
                    + " heads of " + s.headDim() + " (expected (heads + 2 kv heads) x head size rows, a head size up to "
                    + GEMV_WARPS * 32 + ")");
        }
        fused(w, "rope", x, xq, null, qkv, counters, s.heads() + 2 * s.kvHeads(), kcache, vcache, params, freqFactors,
                s.heads(), s.kvHeads(), s.headDim(), s.ropeDims(), s.ctx(), s.freqBase(), s.freqScale(),
                s.neox() ? 1 : 0);
    }

    /** Whether {@link #gemvRope} takes heads of this shape: one block's threads cover a head. */
    public static boolean ropeFusable(AttentionShape s) {
        return s.headDim() <= GEMV_WARPS * 32;
    }

    /** Launches gemv_TYPE_KIND with the plain GEMV's grid and split, then the epilogue's arguments. */
    private void fused(GpuMatrix w, String kind, CUdeviceptr x, QuantizedVector xq, CUdeviceptr add, CUdeviceptr y,
            FusionCounters counters, int words, Object... epilogue) {
        if (!fusable(w)) {
            throw new IllegalArgumentException("fused GEMV of a " + (w.isStacked() ? "stacked " : "") + w.type()
                    + " matrix (expected one Q4_0, Q8_0, F16, BF16, Q4_K or Q6_K matrix)");
        }
        if (counters.length() < words) {
            throw new IllegalArgumentException("GEMV + " + kind + " needs " + words + " counters, got "
                    + counters.length());
        }
        boolean f16 = w.type() == GgmlType.F16 || w.type() == GgmlType.BF16;   // float activations
        if (f16 ? x == null : xq == null || xq.length() != w.cols()) {
            throw new IllegalArgumentException("GEMV " + w.rows() + " x " + w.cols() + " " + w.type() + " needs "
                    + (f16 ? "the float activation" : "a quantized activation of " + w.cols() + " elements, got "
                    + (xq == null ? "none" : xq.length())));
        }
        int split = gemvSplit(w.rows(), f16 ? w.cols() / 8 : w.cols() / 32, cuda.multiprocessors());
        String kernel = "gemv_" + w.type().name().toLowerCase(java.util.Locale.ROOT) + "_" + kind;
        Object[] args = new Object[11 + epilogue.length];
        args[0] = w.quants();
        args[1] = w.scales();
        args[2] = f16 ? null : xq.quants();
        args[3] = f16 ? null : xq.scales();
        args[4] = f16 ? x : null;
        args[5] = add;
        args[6] = y;
        args[7] = w.rows();
        args[8] = w.cols();
        args[9] = split;
        args[10] = counters.words();
        System.arraycopy(epilogue, 0, args, 11, epilogue.length);
        cuda.launch(kernel, blocks(w.rows(), GEMV_WARPS / split), 1, GEMV_WARPS * 32, 0, args);
    }

    /**
     * The kernel {@code base} of a 16-bit float matrix: {@code base_f16} or {@code base_bf16} (one template in the .cu
     * file, instantiated per type).
     */
    static String halfKernel(String base, GgmlType type) {
        return switch (type) {
            case F16 -> base + "_f16";
            case BF16 -> base + "_bf16";
            default -> throw new IllegalArgumentException(base + " of a " + type + " matrix (expected F16 or BF16)");
        };
    }

    /**
     * The units a lane of the decode GEMV reads, per row of {@code cols}: 16-byte pieces of 8 elements for F16 and
     * BF16, 32-element blocks for the quantized types ({@link #gemvSplit} keeps every lane busy with at least one).
     */
    static int gemvUnits(GgmlType type, int cols) {
        return GpuMatrix.isHalf(type) ? cols / 8 : cols / 32;
    }

    /**
     * Warps per output row of a GEMV (1, 2, 4 or 8): doubled while the grid has fewer than 32 warps per SM (too few
     * loads in flight to reach HBM bandwidth: a 1024-row matrix would give 128 blocks of 8 warps, one per SM) and
     * every lane still gets at least one of the row's {@code units} (weight blocks of 16-32 bytes) to read.
     */
    static int gemvSplit(int rows, int units, int multiprocessors) {
        int split = 1;
        while (split < GEMV_WARPS && (long) rows * split < 32L * multiprocessors && units >= 2 * split * 32) {
            split *= 2;
        }
        return split;
    }

    /** silu(gate) * up over gu = [gate | up] (2 * ffn floats): floats to {@code out} (may be null), quantized to q. */
    public void swiglu(CUdeviceptr gu, CUdeviceptr out, QuantizedVector q, int ffn) {
        swiglu(gu, out, q, ffn, 1);
    }

    /** {@link #swiglu} of each of {@code tokens} rows (gu rows of 2 * ffn, outputs rows of ffn). */
    public void swiglu(CUdeviceptr gu, CUdeviceptr out, QuantizedVector q, int ffn, int tokens) {
        checkTokens(tokens);
        if (ffn % 32 != 0) {
            throw new IllegalArgumentException("SwiGLU of " + ffn + " (expected a multiple of 32)");
        }
        cuda.launch("swiglu_quant", blocks(ffn, 256), tokens, 256, 0, gu, out, q == null ? null : q.quants(),
                q == null ? null : q.scales(), ffn);
    }

    public void add(CUdeviceptr a, CUdeviceptr b, CUdeviceptr y, int n) {
        cuda.launch("add_f32", blocks(n, 256), 1, 256, 0, a, b, y, n);
    }

    /** The shape of attention: query heads, key/value heads, head size, rotated dimensions, cache positions. */
    public record AttentionShape(int heads, int kvHeads, int headDim, int ropeDims, int ctx, float freqBase,
            float freqScale, boolean neox) {
        public AttentionShape {
            if (heads % kvHeads != 0 || headDim % 32 != 0 || headDim > 1024 || ropeDims > headDim || ropeDims % 2 != 0
                    || ctx < 1) {
                throw new IllegalArgumentException("attention shape " + heads + "/" + kvHeads + " heads of " + headDim
                        + ", rope " + ropeDims + ", ctx " + ctx + " (expected kv heads dividing heads, head size a "
                        + "multiple of 32 up to 1024, even rope dims up to the head size, ctx 1+)");
            }
        }

        /** Splits of the cache length: enough that each block's scores fit shared memory with room to spare. */
        public int splits() {
            return Math.max(16, (ctx + 2047) / 2048);
        }

        int chunkMax() {
            return (ctx + splits() - 1) / splits();
        }

        /** Dynamic shared memory of one attention block. */
        int sharedBytes() {
            return (headDim + chunkMax()) * Float.BYTES;
        }
    }

    /** RoPE on q and k of qkv = [q | k | v] at params' position, k and v stored into the f16 cache at the slot. */
    public void ropeKv(AttentionShape s, CUdeviceptr qkv, CUdeviceptr kcache, CUdeviceptr vcache, CUdeviceptr params,
            CUdeviceptr freqFactors) {
        ropeKv(s, qkv, kcache, vcache, params, freqFactors, 1);
    }

    /** {@link #ropeKv} of a chunk: row t of qkv is the token at position params[pos] + t. */
    public void ropeKv(AttentionShape s, CUdeviceptr qkv, CUdeviceptr kcache, CUdeviceptr vcache, CUdeviceptr params,
            CUdeviceptr freqFactors, int tokens) {
        checkTokens(tokens);
        cuda.launch("rope_kv", s.heads() + 2 * s.kvHeads(), tokens, s.headDim(), 0, qkv, kcache, vcache, params,
                freqFactors, s.heads(), s.kvHeads(), s.headDim(), s.ropeDims(), s.ctx(), s.freqBase(), s.freqScale(),
                s.neox() ? 1 : 0);
    }

    /** Scratch of the split attention: partial outputs and (max, sum) per head and split. */
    public record AttentionScratch(CUdeviceptr partO, CUdeviceptr partMl, int tokens, long bytes) {
        /** Scratch for chunks of up to {@link #BATCH} tokens. */
        public static AttentionScratch allocate(CudaContext cuda, AttentionShape s) {
            long o = (long) BATCH * s.heads() * s.splits() * s.headDim() * Float.BYTES;
            long ml = (long) BATCH * s.heads() * s.splits() * 2 * Float.BYTES;
            return new AttentionScratch(cuda.alloc(o), cuda.alloc(ml), BATCH, o + ml);
        }

        public void free(CudaContext cuda, AttentionShape s) {
            cuda.free(partO, (long) tokens * s.heads() * s.splits() * s.headDim() * Float.BYTES);
            cuda.free(partMl, (long) tokens * s.heads() * s.splits() * 2 * Float.BYTES);
        }
    }

    /** Prepares the attention kernel for {@code s} (its shared memory); call once before launches or capture. */
    public void prepareAttention(AttentionShape s) {
        if (s.sharedBytes() > 48 * 1024) {
            cuda.allowSharedMemory("attn_split", s.sharedBytes());
        }
    }


    /**
     * Decode attention of the query heads at the start of {@code q} over positions [0, pos] of the slot's cache
     * (pos from params), scale {@code scale}: out[heads * headDim] as floats, and quantized to {@code outQ} (may be
     * null).
     */
    public void attention(AttentionShape s, CUdeviceptr q, CUdeviceptr kcache, CUdeviceptr vcache, CUdeviceptr params,
            AttentionScratch scratch, float scale, CUdeviceptr out, QuantizedVector outQ) {
        attention(s, q, 0, kcache, vcache, params, scratch, scale, out, outQ, 1);
    }

    /**
     * Causal attention of a chunk: token t's query heads at q + t * qStride floats, over cache positions [0, pos + t];
     * out (and outQ) rows of heads * headDim.
     */
    public void attention(AttentionShape s, CUdeviceptr q, int qStride, CUdeviceptr kcache, CUdeviceptr vcache,
            CUdeviceptr params, AttentionScratch scratch, float scale, CUdeviceptr out, QuantizedVector outQ,
            int tokens) {
        checkTokens(tokens);
        if (tokens > scratch.tokens()) {
            throw new IllegalArgumentException("attention of " + tokens + " tokens with scratch for " + scratch.tokens());
        }
        cuda.launch3("attn_split", s.heads(), s.splits(), tokens, ATTN_THREADS, s.sharedBytes(), q, kcache, vcache,
                params, scratch.partO(), scratch.partMl(), s.heads(), s.kvHeads(), s.headDim(), s.ctx(), scale,
                qStride);
        cuda.launch3("attn_combine", s.heads(), 1, tokens, s.headDim(), 0, scratch.partO(), scratch.partMl(), out,
                outQ == null ? null : outQ.quants(), outQ == null ? null : outQ.scales(), s.headDim(), s.splits());
    }

    /** out[cols] = row params[token] of the embedding table, as floats. */
    public void getRow(GpuMatrix table, CUdeviceptr params, CUdeviceptr out) {
        getRows(table, params, out, 1);
    }

    /** Row t of out[tokens][cols] = row tokens[t] of the embedding table (tokens: a device int array). */
    public void getRows(GpuMatrix table, CUdeviceptr tokenIds, CUdeviceptr out, int tokens) {
        checkTokens(tokens);
        getRowsAnyCount(table, tokenIds, out, tokens);
    }

    /** {@link #getRows} without the chunk limit (grid y = tokens; the prefill GEMM path runs hundreds). */
    void getRowsAnyCount(GpuMatrix table, CUdeviceptr tokenIds, CUdeviceptr out, int tokens) {
        int grid = blocks(table.cols(), 256);
        switch (table.type()) {
            case Q4_K -> cuda.launch("get_row_q4_k", grid, tokens, 256, 0, table.quants(), table.scales(), table.rows(),
                    tokenIds, out, table.cols());
            case Q6_K -> cuda.launch("get_row_q6_k", grid, tokens, 256, 0, table.quants(), table.scales(), table.rows(),
                    tokenIds, out, table.cols());
            case Q4_0 -> cuda.launch("get_row_q4_0", grid, tokens, 256, 0, table.quants(), table.scales(), tokenIds, out, table.cols());
            case Q8_0 -> cuda.launch("get_row_q8_0", grid, tokens, 256, 0, table.quants(), table.scales(), tokenIds, out, table.cols());
            case F16, BF16 -> cuda.launch(halfKernel("get_row", table.type()), grid, tokens, 256, 0, table.quants(),
                    tokenIds, out, table.cols());
            case F32 -> cuda.launch("get_row_f32", grid, tokens, 256, 0, table.quants(), tokenIds, out, table.cols());
            default -> throw new IllegalArgumentException("embedding rows of " + table.type());
        }
    }

    /**
     * For each of {@code rows} rows of {@code n} floats at {@code x}: {@code out[row]} = the first index of the row's
     * largest value (ties: the lowest index, as the host's greedy sampler), or -1 when the row holds NaN or +Infinity or
     * only -Infinity (the caller then reads that row itself to report it).
     */
    public void argmaxRows(CUdeviceptr x, int rows, int n, CUdeviceptr out) {
        if (rows < 1 || n < 1) {
            throw new IllegalArgumentException("argmax of " + rows + " rows of " + n + " (expected rows >= 1, n >= 1)");
        }
        cuda.launch("argmax_rows", rows, 1, 1024, 0, x, n, out);
    }

    /** Candidates per row of {@link #sampleCandidates} (CAND_K in candidates.cuh). */
    public static final int CANDIDATES_K = 64;
    /**
     * Output words per row of {@link #sampleCandidates} (CAND_STRIDE): ids, value bits, a double sum, flag, width, then
     * the whole-vocabulary draw: crossing id, decided, the crossing's value bits, a zero, and the draw's u and 1/T as
     * doubles.
     */
    public static final int CANDIDATE_WORDS = 2 * CANDIDATES_K + 12;
    /**
     * Adjustment header words per selected row ({logits row, first entry word, entry count, repeat penalty bits, then
     * the draw's u and 1/T as doubles, low word first; u NaN: no draw}) and words per entry ({token id, flags: 1 bias,
     * 2 penalty; bias bits, subtrahend bits}).
     */
    public static final int ADJUST_HEADER_WORDS = 8, ADJUST_ENTRY_WORDS = 4;
    /** Warps of a {@link #sampleCandidates} block: the draw's summation order (Candidates.DRAW_WARPS) depends on it. */
    public static final int CANDIDATES_WARPS = 16;

    /**
     * {@code sample_candidates} (candidates.cuh): for each of {@code rows} selected rows of {@code n} logits (row b is
     * the logits row its header in {@code adjust} names), copies the row to {@code work} (rows x n floats), applies the
     * row's adjustments from {@code adjust} (logit bias, then the
     * repetition/presence/frequency penalties, in the host sampler's float arithmetic), and writes
     * {@link #CANDIDATE_WORDS} words to {@code out}: the {@link #CANDIDATES_K} first tokens by adjusted value (ties: lower
     * id first) sorted, their values, the double sum of {@code exp(v - max)} over the adjusted row, a flag for NaN or
     * +Infinity, and the width {@code min(K, n)}, to output row b; for a row whose header carries a draw (u, 1/T), the
     * host sampler's draw over the whole adjusted row in id order (the first id whose cumulative sum of {@code
     * exp((v - max) / T)} exceeds {@code u} times the total) and whether it is decided (the target is clear of both
     * cumulative sums around it by a margin that covers the host's rounding). The logits themselves are not modified.
     */
    public void sampleCandidates(CUdeviceptr logits, int rows, int n, CUdeviceptr work, CUdeviceptr adjust,
            CUdeviceptr out) {
        if (rows < 1 || n < 1) {
            throw new IllegalArgumentException("candidates of " + rows + " rows of " + n
                    + " (expected rows >= 1, n >= 1)");
        }
        cuda.launch("sample_candidates", rows, 1, 32 * CANDIDATES_WARPS, 0, logits, n, work, adjust, out);
    }
}
