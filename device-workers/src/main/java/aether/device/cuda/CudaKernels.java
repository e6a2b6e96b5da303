package aether.device.cuda;

import aether.runtime.tensor.GgmlType;
import jcuda.driver.CUdeviceptr;

/**
 * Typed launchers for the kernels of {@code aether_kernels.cu}: the shapes each kernel expects are checked here, the
 * grid is chosen here, and the launch goes on the context's stream (asynchronous; capture-safe: nothing here
 * synchronizes). Per-token values are read by the kernels from the {@code params} device buffer: int[{@value
 * #PARAM_WORDS}] = token id, position, sequence slot, unused.
 */
public final class CudaKernels {

    public static final int PARAM_TOKEN = 0;
    public static final int PARAM_POS = 1;
    public static final int PARAM_SLOT = 2;
    public static final int PARAM_WORDS = 4;

    /** Rows per GEMV block (one warp per row); must match GEMV_WARPS in the .cu file. */
    static final int GEMV_WARPS = 8;
    /** Threads of an attention block; must match ATTN_THREADS. */
    static final int ATTN_THREADS = 128;

    private final CudaContext cuda;

    /** Every kernel of the module, loaded at construction so none loads lazily inside a graph capture. */
    static final String[] KERNELS = {"repack_q4_0", "repack_q8_0", "quantize_q8_1", "rmsnorm_quant", "swiglu_quant",
        "add_f32", "gemv_q4_0", "gemv_q8_0", "gemv_f16", "rope_kv", "attn_split", "attn_combine", "get_row_q4_0",
        "get_row_q8_0", "get_row_f16", "get_row_f32", "argmax_f32"};

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

    /** {@code out} = q8_1 blocks of x[n]. */
    public void quantize(CUdeviceptr x, QuantizedVector out) {
        cuda.launch("quantize_q8_1", blocks(out.length(), 256), 1, 256, 0, x, out.quants(), out.scales(), out.length());
    }

    /** RMSNorm of x[n] times w[n]: floats to {@code h} (may be null) and quantized to {@code q} (may be null). */
    public void rmsNorm(CUdeviceptr x, CUdeviceptr w, CUdeviceptr h, QuantizedVector q, int n, float eps) {
        if (n % 32 != 0 || (q != null && q.length() != n)) {
            throw new IllegalArgumentException("rmsnorm of " + n + " elements (expected a multiple of 32"
                    + (q == null ? "" : " and a quantized output of the same length, got " + q.length()) + ")");
        }
        cuda.launch("rmsnorm_quant", 1, 1, 1024, 0, x, w, h, q == null ? null : q.quants(),
                q == null ? null : q.scales(), n, eps);
    }

    /**
     * y[M] = W . x (+ add[M]; {@code add} may be {@code y} itself). Quantized matrices read {@code xq}, float ones
     * read {@code x}; the other may be null.
     */
    public void gemv(GpuMatrix w, CUdeviceptr x, QuantizedVector xq, CUdeviceptr add, CUdeviceptr y) {
        int split = gemvSplit(w.rows(), w.type() == GgmlType.F16 ? w.cols() / 8 : w.cols() / 32,
                cuda.multiprocessors());
        int grid = blocks(w.rows(), GEMV_WARPS / split);
        switch (w.type()) {
            case Q4_0, Q8_0 -> {
                if (xq == null || xq.length() != w.cols()) {
                    throw new IllegalArgumentException("GEMV " + w.rows() + " x " + w.cols() + " " + w.type()
                            + " needs a quantized activation of " + w.cols() + " elements, got "
                            + (xq == null ? "none" : xq.length()));
                }
                cuda.launch(w.type() == GgmlType.Q4_0 ? "gemv_q4_0" : "gemv_q8_0", grid, 1, GEMV_WARPS * 32, 0,
                        w.quants(), w.scales(), xq.quants(), xq.scales(), add, y, w.rows(), w.cols(), split);
            }
            case F16 -> {
                if (x == null) {
                    throw new IllegalArgumentException("GEMV of an F16 matrix needs the float activation");
                }
                cuda.launch("gemv_f16", grid, 1, GEMV_WARPS * 32, 0, w.quants(), x, add, y, w.rows(), w.cols(), split);
            }
            default -> throw new IllegalArgumentException("GEMV of a " + w.type() + " matrix (expected Q4_0, Q8_0, F16)");
        }
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
        if (ffn % 32 != 0) {
            throw new IllegalArgumentException("SwiGLU of " + ffn + " (expected a multiple of 32)");
        }
        cuda.launch("swiglu_quant", blocks(ffn, 256), 1, 256, 0, gu, out, q == null ? null : q.quants(),
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
        cuda.launch("rope_kv", s.heads() + 2 * s.kvHeads(), 1, s.headDim(), 0, qkv, kcache, vcache, params,
                freqFactors, s.heads(), s.kvHeads(), s.headDim(), s.ropeDims(), s.ctx(), s.freqBase(), s.freqScale(),
                s.neox() ? 1 : 0);
    }

    /** Scratch of the split attention: partial outputs and (max, sum) per head and split. */
    public record AttentionScratch(CUdeviceptr partO, CUdeviceptr partMl, long bytes) {
        public static AttentionScratch allocate(CudaContext cuda, AttentionShape s) {
            long o = (long) s.heads() * s.splits() * s.headDim() * Float.BYTES;
            long ml = (long) s.heads() * s.splits() * 2 * Float.BYTES;
            return new AttentionScratch(cuda.alloc(o), cuda.alloc(ml), o + ml);
        }

        public void free(CudaContext cuda, AttentionShape s) {
            cuda.free(partO, (long) s.heads() * s.splits() * s.headDim() * Float.BYTES);
            cuda.free(partMl, (long) s.heads() * s.splits() * 2 * Float.BYTES);
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
        cuda.launch("attn_split", s.heads(), s.splits(), ATTN_THREADS, s.sharedBytes(), q, kcache, vcache, params,
                scratch.partO(), scratch.partMl(), s.heads(), s.kvHeads(), s.headDim(), s.ctx(), scale);
        cuda.launch("attn_combine", s.heads(), 1, s.headDim(), 0, scratch.partO(), scratch.partMl(), out,
                outQ == null ? null : outQ.quants(), outQ == null ? null : outQ.scales(), s.headDim(), s.splits());
    }

    /** out[cols] = row params[token] of the embedding table, as floats. */
    public void getRow(GpuMatrix table, CUdeviceptr params, CUdeviceptr out) {
        int grid = blocks(table.cols(), 256);
        switch (table.type()) {
            case Q4_0 -> cuda.launch("get_row_q4_0", grid, 1, 256, 0, table.quants(), table.scales(), params, out, table.cols());
            case Q8_0 -> cuda.launch("get_row_q8_0", grid, 1, 256, 0, table.quants(), table.scales(), params, out, table.cols());
            case F16 -> cuda.launch("get_row_f16", grid, 1, 256, 0, table.quants(), params, out, table.cols());
            case F32 -> cuda.launch("get_row_f32", grid, 1, 256, 0, table.quants(), params, out, table.cols());
            default -> throw new IllegalArgumentException("embedding rows of " + table.type());
        }
    }

    /** out[0] = index of the largest of x[n] (the lowest on ties). */
    public void argmax(CUdeviceptr x, int n, CUdeviceptr out) {
        cuda.launch("argmax_f32", 1, 1, 1024, 0, x, n, out);
    }
}
