package aether.device.cuda;

import aether.device.cuda.CudaKernels.AttentionShape;
import aether.runtime.tensor.GgmlType;
import java.util.Optional;
import jcuda.driver.CUdeviceptr;

/**
 * Launchers of the prompt-prefill kernels of {@code prefill.cuh}: the tensor-core GEMM (f16 activations times weights
 * dequantized to f16 tile by tile, f32 results; BF16 weights too, see WT_BF16 there for why f16 and not a bf16 mma), the f16 activation rows it reads (RMSNorm, SwiGLU, a plain
 * conversion), and the causal attention of a chunk of queries over the f16 KV cache. Rows are tokens: a chunk of
 * {@code n} tokens is an [n][width] row-major array. Like {@link CudaKernels}, every launch goes on the context's
 * stream and nothing here synchronizes (capture-safe); shapes are checked here.
 */
public final class CudaPrefill {

    /** Weight rows per GEMM block; must match GM_BM. */
    static final int GEMM_ROWS = 128;
    /** Query tokens per attention block (one warp each); must match attn_prefill. */
    static final int ATTN_TOKENS = 4;

    /** The weight types of the GEMM (prefill.cuh's WT_*: one kernel per type and tile). */
    private static final java.util.Set<GgmlType> GEMM_TYPES = java.util.Collections.unmodifiableSet(
            java.util.EnumSet.of(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_K,
                    GgmlType.Q6_K));

    static final String[] KERNELS = kernels();  // after GEMM_TYPES, which it reads

    /**
     * Whether {@link #attention} runs the tensor-core flash kernel ({@code attn_prefill_flash_d64/_d128} of {@code
     * flash_attn.cuh}) where the head size allows ({@link FlashLaunch#plan}); {@code -Daether.cuda.flashPrefill=false}
     * keeps the one-warp-per-query kernel {@code attn_prefill} everywhere, to time one against the other.
     */
    static final boolean FLASH_PREFILL = Boolean.parseBoolean(System.getProperty("aether.cuda.flashPrefill", "true"));

    /**
     * Warps per flash block ({@code -Daether.cuda.flashWarps=4|8}, default 4): each takes 16 (token, query head) rows,
     * so 8 stage every K/V tile for twice the rows (half the L2 traffic) where 4 launch twice the blocks.
     */
    static final int FLASH_WARPS = FlashLaunch.warps(System.getProperty("aether.cuda.flashWarps", "4"));

    /**
     * One launch of the flash prefill attention: kernel, grid (KV heads x row tiles), threads and dynamic shared
     * bytes. Its block takes 16 query rows per warp of one KV head, a row being a (token, query head) pair of the heads
     * that share the KV head, so that each K/V tile it stages serves all of them.
     */
    record FlashLaunch(String kernel, int gridX, int gridY, int threads, int sharedBytes) {

        /** Query rows of a warp; must match flash_attn.cuh (one m16 tile). */
        static final int WARP_ROWS = 16;
        /** Cache positions of a K/V tile; must match FA_BN. */
        static final int POSITIONS = 64;
        /** Head sizes with a flash kernel. */
        static final int[] HEAD_SIZES = {64, 128};
        /** Warp counts with a flash kernel (FLASH_KERNEL instances; 8: the _w8 names). */
        static final int[] WARPS = {4, 8};

        /** The {@code aether.cuda.flashWarps} value: 4 or 8. */
        static int warps(String value) {
            return switch (value.strip()) {
                case "4" -> 4;
                case "8" -> 8;
                default -> throw new IllegalArgumentException("aether.cuda.flashWarps=" + value + " (expected 4 or 8)");
            };
        }

        /** The kernel's name for head size d and a block of {@code warps} warps. */
        static String kernel(int d, int warps) {
            return "attn_prefill_flash_d" + d + (warps == 4 ? "" : "_w" + warps);
        }

        /** Dynamic shared bytes for head size d: two stages of a K and a V tile, rows padded to d + 8 halves. */
        static int sharedBytes(int d) {
            return 2 * 2 * POSITIONS * (d + 8) * 2;
        }

        /**
         * The launch for a chunk of {@code rows} tokens with blocks of {@code warps} warps (4 or 8), or empty where no
         * flash kernel takes the head size (then {@code attn_prefill} runs).
         */
        static Optional<FlashLaunch> plan(AttentionShape s, int rows, int warps) {
            if (warps != 4 && warps != 8) {
                throw new IllegalArgumentException("flash prefill blocks of " + warps + " warps (expected 4 or 8)");
            }
            int d = s.headDim();
            if (d != 64 && d != 128) {
                return Optional.empty();
            }
            int blockRows = warps * WARP_ROWS;
            long queryRows = (long) rows * (s.heads() / s.kvHeads());
            long tiles = (queryRows + blockRows - 1) / blockRows;
            if (tiles > 65535) {
                throw new IllegalArgumentException("flash prefill attention of " + rows + " tokens x "
                        + s.heads() / s.kvHeads() + " query heads per KV head (at most " + 65535L * blockRows
                        + " rows a KV head with " + warps + " warps a block)");
            }
            return Optional.of(new FlashLaunch(kernel(d, warps), s.kvHeads(), (int) tiles, warps * 32,
                    sharedBytes(d)));
        }
    }

    private final CudaContext cuda;
    private final CudaKernels kernels;

    public CudaPrefill(CudaKernels kernels) {
        this.kernels = kernels;
        this.cuda = kernels.context();
        cuda.preload(KERNELS);
        for (int d : FlashLaunch.HEAD_SIZES) {  // D = 128 takes 68 KiB, past the 48 KiB default
            for (int w : FlashLaunch.WARPS) {
                cuda.allowSharedMemory(FlashLaunch.kernel(d, w), FlashLaunch.sharedBytes(d));
            }
        }
    }

    private static String[] kernels() {
        var names = new java.util.ArrayList<String>();
        for (GgmlType t : GEMM_TYPES) {
            for (int bn : new int[] {32, 64, 128}) {
                names.add(gemmKernel(t, bn));
            }
        }
        names.addAll(java.util.List.of("convert_f16", "rmsnorm_f16", "swiglu_f16", "attn_prefill", "bf16_beyond_f16"));
        for (int d : FlashLaunch.HEAD_SIZES) {
            for (int w : FlashLaunch.WARPS) {
                names.add(FlashLaunch.kernel(d, w));
            }
        }
        return names.toArray(String[]::new);
    }

    /** Whether {@link #gemm} reads matrices of this type. */
    public static boolean supports(GgmlType type) {
        return GEMM_TYPES.contains(type);
    }

    /** The GEMM kernel of a weight type and tile: {@code gemm_<type>_<bn>}, e.g. {@code gemm_bf16_64}. */
    static String gemmKernel(GgmlType type, int bn) {
        return "gemm_" + type.name().toLowerCase(java.util.Locale.ROOT) + "_" + bn;
    }

    /**
     * Tokens per GEMM block for {@code n} tokens: the largest tile the tokens fill (32, 64, else 128). Measured on an
     * H100 (CudaBench, 2026-12-07, N = 512): 128 beat 64 at every 8B shape, also where its grid has fewer blocks than
     * SMs (o and down, 4096 rows: 118 vs 148 µs and 395 vs 465 µs), so there is no occupancy rule; {@code rows} and
     * {@code multiprocessors} are kept for the next tuning.
     */
    static int tileTokens(int n, int rows, int multiprocessors) {
        return n <= 32 ? 32 : n <= 64 ? 64 : 128;
    }

    /**
     * Y[t] = W . X[t] (+ add[t]; {@code add} may be {@code y}) for the {@code n} rows of X (f16, [n][w.cols()]); Y
     * and add are f32 [n][w.rows()].
     */
    public void gemm(GpuMatrix w, CUdeviceptr x16, CUdeviceptr add, CUdeviceptr y, int n) {
        if (w.isStacked()) {  // parts of different types: one launch per part, each into its columns of Y's rows
            long row = 0;
            for (GpuMatrix part : w.parts()) {
                gemm(part, x16, add == null ? null : add.withByteOffset(row * 4), y.withByteOffset(row * 4), n,
                        w.rows(), tileTokens(n, part.rows(), cuda.multiprocessors()));
                row += part.rows();
            }
            return;
        }
        gemm(w, x16, add, y, n, w.rows(), tileTokens(n, w.rows(), cuda.multiprocessors()));
    }

    /** {@link #gemm} of one (unstacked) matrix with {@code bn} tokens per block (32, 64 or 128); tests force each. */
    void gemm(GpuMatrix w, CUdeviceptr x16, CUdeviceptr add, CUdeviceptr y, int n, int ldy, int bn) {
        if (bn != 32 && bn != 64 && bn != 128) {
            throw new IllegalArgumentException("GEMM tile of " + bn + " tokens (expected 32, 64 or 128)");
        }
        if (!supports(w.type())) {
            throw new IllegalArgumentException("prefill GEMM of a " + w.type() + " matrix (expected Q4_0, Q8_0, F16, "
                    + "BF16, Q4_K, Q6_K)");
        }
        if (n < 1 || w.cols() % 32 != 0) {
            throw new IllegalArgumentException("prefill GEMM of " + n + " tokens x " + w.cols() + " columns (expected "
                    + "1+ tokens and columns a multiple of 32)");
        }
        String name = gemmKernel(w.type(), bn);
        int rowTiles = (w.rows() + GEMM_ROWS - 1) / GEMM_ROWS;
        if (rowTiles > 65535) {
            throw new IllegalArgumentException("prefill GEMM of " + w.rows() + " rows (at most " + 65535 * GEMM_ROWS + ")");
        }
        cuda.launch3(name, (n + bn - 1) / bn, rowTiles, 1, 256, 0, w.quants(), w.scales(), x16, add, y, w.rows(), n,
                w.cols(), ldy);
    }

    /**
     * Whether the GEMM's f16 weight tiles hold every value of {@code w}: false for a BF16 matrix (or a stacked part)
     * with a value of magnitude 65536 or more, Inf or NaN (bf16 keeps f32's exponent range, f16 tops out at 65504), true
     * for every other matrix (the other types are not checked). One pass over the matrix on the device, then a wait for
     * its flag: for load time, not inside a capture.
     */
    public boolean fitsHalfTiles(GpuMatrix w) {
        if (w.isStacked()) {
            return w.parts().stream().allMatch(this::fitsHalfTiles);
        }
        if (w.type() != GgmlType.BF16) {
            return true;
        }
        long n = (long) w.rows() * w.cols();
        CUdeviceptr flag = cuda.alloc(Integer.BYTES);
        try {
            cuda.fill32(flag, 0, 1);
            cuda.launch("bf16_beyond_f16", rangeCheckBlocks(n, cuda.multiprocessors()), 1, 256, 0, w.quants(), n, flag);
            int[] beyond = new int[1];
            cuda.download(flag, beyond);
            cuda.checkErrors("checking the range of a " + w.rows() + " x " + w.cols() + " BF16 matrix");
            return beyond[0] == 0;
        } finally {
            cuda.free(flag, Integer.BYTES);
        }
    }

    /**
     * Blocks of 256 threads for the range check of {@code n} bf16 values (8 per thread and step, grid-stride): enough to
     * fill the chip (8 blocks per SM), never more than one step's worth, at least one.
     */
    static int rangeCheckBlocks(long n, int multiprocessors) {
        long needed = (n / 8 + 255) / 256;
        return (int) Math.max(1, Math.min(needed, 8L * multiprocessors));
    }

    /** out16[t] = f16(x[t]) for {@code rows} rows of {@code width} floats. */
    public void toHalf(CUdeviceptr x, CUdeviceptr out16, int width, int rows) {
        checkRows(rows);
        cuda.launch("convert_f16", (width + 255) / 256, rows, 256, 0, x, out16, width);
    }

    /** RMSNorm of each of {@code rows} rows of x[rows][n] times w[n], written as f16 rows. */
    public void rmsNormHalf(CUdeviceptr x, CUdeviceptr w, CUdeviceptr out16, int n, float eps, int rows) {
        checkRows(rows);
        if (n % 4 != 0) {
            throw new IllegalArgumentException("rmsnorm of " + n + " elements (expected a multiple of 4)");
        }
        cuda.launch("rmsnorm_f16", (n + 255) / 256, rows, 256, 0, x, w, out16, n, eps);
    }

    /** silu(gate) * up of each row of gu = [rows][gate(ffn) | up(ffn)], written as f16 rows of ffn. */
    public void swigluHalf(CUdeviceptr gu, CUdeviceptr out16, int ffn, int rows) {
        checkRows(rows);
        cuda.launch("swiglu_f16", (ffn + 255) / 256, rows, 256, 0, gu, out16, ffn);
    }

    /**
     * Causal attention of a chunk of {@code rows} tokens at positions params[pos] + t of the slot params[slot]:
     * token t's query heads at q + t * qStride floats (already rotated), over cache positions [0, pos + t]; out16
     * rows of heads * headDim halves. On tensor cores (flash kernel, {@link #FLASH_WARPS} warps a block) for head
     * sizes 64 and 128 unless {@code -Daether.cuda.flashPrefill=false}; else one warp per (token, head).
     */
    public void attention(AttentionShape s, CUdeviceptr q, int qStride, CUdeviceptr kcache, CUdeviceptr vcache,
            CUdeviceptr params, float scale, CUdeviceptr out16, int rows) {
        attention(s, q, qStride, kcache, vcache, params, scale, out16, rows, FLASH_PREFILL);
    }

    /** {@link #attention} with the kernel chosen: {@code flash} where the head size has one, else attn_prefill. */
    void attention(AttentionShape s, CUdeviceptr q, int qStride, CUdeviceptr kcache, CUdeviceptr vcache,
            CUdeviceptr params, float scale, CUdeviceptr out16, int rows, boolean flash) {
        attention(s, q, qStride, kcache, vcache, params, scale, out16, rows, flash ? FLASH_WARPS : 0);
    }

    /**
     * {@link #attention} with the kernel chosen: the flash kernel with blocks of {@code flashWarps} (4 or 8) warps
     * where the head size has one, attn_prefill for {@code flashWarps} 0 or other head sizes.
     */
    void attention(AttentionShape s, CUdeviceptr q, int qStride, CUdeviceptr kcache, CUdeviceptr vcache,
            CUdeviceptr params, float scale, CUdeviceptr out16, int rows, int flashWarps) {
        checkRows(rows);
        if (s.headDim() > 256) {
            throw new IllegalArgumentException("prefill attention with head size " + s.headDim() + " (at most 256)");
        }
        var plan = flashWarps != 0 ? FlashLaunch.plan(s, rows, flashWarps) : Optional.<FlashLaunch>empty();
        if (plan.isPresent()) {
            FlashLaunch f = plan.get();
            cuda.launch3(f.kernel(), f.gridX(), f.gridY(), 1, f.threads(), f.sharedBytes(), q, kcache, vcache, params,
                    out16, rows, s.heads(), s.kvHeads(), s.ctx(), scale, qStride);
            return;
        }
        cuda.launch3("attn_prefill", s.heads(), (rows + ATTN_TOKENS - 1) / ATTN_TOKENS, 1, 32 * ATTN_TOKENS, 0, q,
                kcache, vcache, params, out16, rows, s.heads(), s.kvHeads(), s.headDim(), s.ctx(), scale, qStride);
    }

    /**
     * RoPE and the KV-cache write of a chunk of {@code rows} tokens (the decode kernel rope_kv, whose grid takes the
     * token from y): row t of qkv = [q | k | v] is the token at position params[pos] + t.
     */
    public void ropeKv(AttentionShape s, CUdeviceptr qkv, CUdeviceptr kcache, CUdeviceptr vcache, CUdeviceptr params,
            CUdeviceptr freqFactors, int rows) {
        checkRows(rows);
        cuda.launch("rope_kv", s.heads() + 2 * s.kvHeads(), rows, s.headDim(), 0, qkv, kcache, vcache, params,
                freqFactors, s.heads(), s.kvHeads(), s.headDim(), s.ropeDims(), s.ctx(), s.freqBase(), s.freqScale(),
                s.neox() ? 1 : 0);
    }

    /** Row t of out[rows][cols] = row tokenIds[t] of the embedding table, for any number of rows. */
    public void getRows(GpuMatrix table, CUdeviceptr tokenIds, CUdeviceptr out, int rows) {
        checkRows(rows);
        kernels.getRowsAnyCount(table, tokenIds, out, rows);
    }

    private static void checkRows(int rows) {
        if (rows < 1 || rows > 65535) {
            throw new IllegalArgumentException("a chunk of " + rows + " rows (expected 1..65535)");
        }
    }
}
