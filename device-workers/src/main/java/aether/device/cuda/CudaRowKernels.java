package aether.device.cuda;

import aether.device.cuda.CudaKernels.AttentionScratch;
import aether.device.cuda.CudaKernels.AttentionShape;
import aether.runtime.tensor.GgmlType;
import java.util.Locale;
import jcuda.driver.CUdeviceptr;

/**
 * Launchers for a batched decode step ({@code decode_rows.cuh}): {@code rows} sequences, one new token each, every row
 * with its own position and KV slot, through one set of launches per layer. Per-row values live in a device int
 * buffer of {@link #idsWords} words ({@link #ids}: token ids at 0, positions at {@code capacity}, slots at {@code 2 *
 * capacity}), written by the host before each step so that a graph captured for a row count stays valid.
 *
 * <p>Activations are {@code [row][width]} as for a prompt chunk; the element-wise kernels (RMSNorm, SwiGLU, embedding
 * rows, the attention's combine) are the chunk kernels of {@code aether_kernels.cu} with the row in the grid. The
 * Q4_0/Q8_0 GEMVs run on int8 tensor cores ({@code mmq_rows.cuh}: tiles of 128 weight rows x 64 activation rows staged
 * in shared memory; see {@link RowKernel} for the older kernels); F16 and BF16 ones are the chunk GEMV in groups of
 * {@link CudaKernels#BATCH} rows. Asynchronous and capture-safe, like {@link CudaKernels}; {@link #free} releases the split-K
 * buffer.
 */
public final class CudaRowKernels {

    /** Most rows one launch takes (grid y/z limit of the row kernels). */
    public static final int MAX_ROWS = 65_535;

    /** The Q4_0/Q8_0 row GEMV kernels; {@code -Daether.cuda.rowsKernel=mmq|mma|dp4a} picks the default. */
    public enum RowKernel {
        /**
         * {@code gemv_rows_mmq_*}: int8 tensor cores, 128 weight rows x 64 activation rows a block, both staged in
         * shared memory per K tile, split-K fixed by (M, K); the default.
         */
        MMQ,
        /** {@code gemv_rows_mma_*}: int8 tensor cores, 16 weight rows a block, activations read from L2 per block. */
        MMA,
        /** {@code gemv_rows_*}: the dp4a chunk GEMV in groups of {@link CudaKernels#BATCH} rows. */
        DP4A;

        /** From the {@code aether.cuda.rowsKernel} name (case-insensitive). */
        public static RowKernel parse(String name) {
            for (RowKernel k : values()) {
                if (k.name().equalsIgnoreCase(name.strip())) {
                    return k;
                }
            }
            throw new IllegalArgumentException("aether.cuda.rowsKernel=" + name + " (expected mmq, mma or dp4a)");
        }
    }

    /**
     * The Q4_0/Q8_0 row GEMV {@link #gemv} uses: {@code -Daether.cuda.rowsKernel}, default {@link RowKernel#MMQ}
     * ({@code -Daether.cuda.rowsMma=false}, the older switch, still selects {@link RowKernel#DP4A}). Every kernel sums
     * each output in an order fixed by (M, K): a row's results do not depend on the other rows of the pass.
     */
    public static final RowKernel DEFAULT_KERNEL = System.getProperty("aether.cuda.rowsKernel") != null
            ? RowKernel.parse(System.getProperty("aether.cuda.rowsKernel"))
            : Boolean.parseBoolean(System.getProperty("aether.cuda.rowsMma", "true")) ? RowKernel.MMQ : RowKernel.DP4A;

    /** Weight rows of one tensor-core GEMV block and activation rows it takes; must match the .cuh file. */
    static final int MMA_ROWS = 16;
    static final int MMA_TOKENS = 64;
    static final int MMA_THREADS = 256;

    /** MMQ blocks: weight rows, activation rows, threads, dynamic shared bytes per type (mmq_rows.cuh's MmqTile). */
    static final int MMQ_ROWS = 128;
    static final int MMQ_TOKENS = 64;
    static final int MMQ_THREADS = 256;
    static final int MMQ_SMEM_Q4_0 = 111_168;
    static final int MMQ_SMEM_Q8_0 = 80_448;
    /**
     * Blocks the MMQ kernel aims at (2 per SM of a 132-SM H100): a matrix of fewer row blocks splits K into up to
     * {@code MMQ_SPLIT_TARGET / row blocks} ranges. A constant, not the device's SM count, so the summation order (and
     * the bits of every result) depends on (M, K) alone.
     */
    static final int MMQ_SPLIT_TARGET = 264;
    /** Floats of split-K partial sums per row: splits * M <= MMQ_SPLIT_TARGET * MMQ_ROWS whenever splits > 1. */
    static final int MMQ_SPLIT_COLUMNS = MMQ_SPLIT_TARGET * MMQ_ROWS;

    static final String[] KERNELS = {"gemv_rows_mmq_q4_0", "gemv_rows_mmq_q8_0", "gemv_rows_mmq_reduce",
        "gemv_rows_mma_q4_0", "gemv_rows_mma_q8_0", "gemv_rows_q4_0", "gemv_rows_q8_0",
        "gemv_rows_f16", "gemv_rows_bf16", "rope_kv_rows",
        "attn_split_rows", "attn_split_rows_gqa", "attn_split_rows_gqa_fused", "rmsnorm_quant", "swiglu_quant", "attn_combine", "get_row_q4_0", "get_row_q8_0",
        "get_row_f16", "get_row_bf16", "get_row_f32"};

    /**
     * Where the MMQ kernel's split-K partial sums are added: {@code fused} (default; the last block of each output tile,
     * in the GEMM's own launch) or {@code kernel} ({@code gemv_rows_mmq_reduce}, a second launch). Bitwise the same
     * results; {@code -Daether.cuda.mmqReduce=kernel} is there to time one against the other.
     */
    static final boolean FUSED_REDUCE = fusedReduce(System.getProperty("aether.cuda.mmqReduce", "fused"));

    static boolean fusedReduce(String name) {
        return switch (name.strip().toLowerCase(Locale.ROOT)) {
            case "fused" -> true;
            case "kernel" -> false;
            default -> throw new IllegalArgumentException("aether.cuda.mmqReduce=" + name + " (expected fused or kernel)");
        };
    }

    /**
     * Whether the batched rows' grouped attention merges its splits in the split kernel ({@code
     * attn_split_rows_gqa_fused}; {@code -Daether.cuda.fusedRowAttention=false} for two launches). On: it was part of
     * the build that served 4,608 t/s at 64 sequences (2026-12-07).
     */
    static final boolean FUSED_ROW_ATTENTION = Boolean.parseBoolean(
            System.getProperty("aether.cuda.fusedRowAttention", "true"));

    private final CudaContext cuda;
    private final int capacity;
    /** Split-K partial sums of the MMQ kernel: [split][row][M] floats, capacity * MMQ_SPLIT_COLUMNS of them. */
    private final CUdeviceptr splitSums;
    /**
     * Split-K arrival counters of the MMQ kernel, one word per output tile (row block x 64 activation rows), zeroed
     * here once: the last block of a tile to finish sums the partials and zeroes its counter again for the next launch.
     */
    private final CUdeviceptr splitCounters;

    /** @param capacity rows of the per-row buffers (and most rows of a step) */
    public CudaRowKernels(CudaContext cuda, int capacity) {
        if (capacity < 1 || capacity > MAX_ROWS) {
            throw new IllegalArgumentException("decode rows " + capacity + " (expected 1.." + MAX_ROWS + ")");
        }
        this.cuda = cuda;
        this.capacity = capacity;
        cuda.preload(KERNELS);
        cuda.allowSharedMemory("gemv_rows_mmq_q4_0", MMQ_SMEM_Q4_0);
        cuda.allowSharedMemory("gemv_rows_mmq_q8_0", MMQ_SMEM_Q8_0);
        // two blocks per SM need 2 x (111,168 + 1,024 reserved) bytes of shared memory on an H100: the largest carveout
        cuda.preferSharedMemory("gemv_rows_mmq_q4_0");
        cuda.preferSharedMemory("gemv_rows_mmq_q8_0");
        this.splitSums = cuda.alloc(splitSumBytes());
        this.splitCounters = cuda.alloc(splitCounterWords(capacity) * Integer.BYTES);
        cuda.fill32(splitCounters, 0, splitCounterWords(capacity));
    }

    /**
     * Counter words for {@code capacity} rows: a split matrix has fewer than {@code MMQ_SPLIT_TARGET / 2} row blocks
     * ({@link #mmqSplits}), times the 64-row column blocks.
     */
    static long splitCounterWords(int capacity) {
        return (long) (MMQ_SPLIT_TARGET / 2) * blocks(capacity, MMQ_TOKENS);
    }

    /**
     * Device bytes per row of capacity that a {@code CudaRowKernels} holds, at most: the MMQ split-K partial sums and
     * their arrival counters (a column block's counters counted for each of its rows: a bound that holds for 1 row).
     */
    public static long splitSumBytesPerRow() {
        return (long) MMQ_SPLIT_COLUMNS * Float.BYTES + (MMQ_SPLIT_TARGET / 2) * (long) Integer.BYTES;
    }

    private long splitSumBytes() {
        return (long) capacity * MMQ_SPLIT_COLUMNS * Float.BYTES;
    }

    /** Frees the device buffers this owns (split-K partial sums, counters); the kernels must not be used after. */
    public void free() {
        cuda.free(splitSums, splitSumBytes());
        cuda.free(splitCounters, splitCounterWords(capacity) * Integer.BYTES);
        attentionCounters.forEach((s, c) -> cuda.free(c, (long) capacity * s.kvHeads() * Integer.BYTES));
        attentionCounters.clear();
    }

    /** Arrival counters of {@code attn_split_rows_gqa_fused}, one int per (row, KV head), by shape. */
    private final java.util.Map<AttentionShape, CUdeviceptr> attentionCounters = new java.util.HashMap<>();

    /**
     * K ranges of the MMQ kernel for an M x K matrix of {@code type}: 1 when M gives at least half of {@link
     * #MMQ_SPLIT_TARGET} row blocks, else up to {@code MMQ_SPLIT_TARGET / row blocks}, at most one per K tile. A
     * function of (type, M, K) only, never of the rows of a pass.
     */
    static int mmqSplits(GgmlType type, int m, int k) {
        int rowBlocks = blocks(m, MMQ_ROWS);
        int tiles = blocks(k / 32, type == GgmlType.Q4_0 ? 8 : 4);
        if (rowBlocks >= MMQ_SPLIT_TARGET / 2) {
            return 1;
        }
        return Math.max(1, Math.min(tiles, MMQ_SPLIT_TARGET / rowBlocks));
    }

    public int capacity() {
        return capacity;
    }

    /** Words of the per-row id buffer: token ids, positions, slots. */
    public int idsWords() {
        return 3 * capacity;
    }

    /** Index in the host copy of the id buffer of row r's token id, position or slot. */
    public int tokenIndex(int r) {
        return r;
    }

    public int positionIndex(int r) {
        return capacity + r;
    }

    public int slotIndex(int r) {
        return 2 * capacity + r;
    }

    /** True for the matrix types {@link #gemv} reads. */
    public static boolean supports(GgmlType type) {
        return type == GgmlType.Q4_0 || type == GgmlType.Q8_0 || GpuMatrix.isHalf(type);
    }

    private void checkRows(int rows) {
        if (rows < 1 || rows > capacity) {
            throw new IllegalArgumentException("decode step of " + rows + " rows (expected 1.." + capacity + ")");
        }
    }

    private static int blocks(long n, int per) {
        return (int) ((n + per - 1) / per);
    }

    /** Row r of out[rows][cols] = row ids[r] of the embedding table, as floats. */
    public void embed(GpuMatrix table, CUdeviceptr ids, CUdeviceptr out, int rows) {
        checkRows(rows);
        int grid = blocks(table.cols(), 256);
        switch (table.type()) {
            case Q4_0 -> cuda.launch("get_row_q4_0", grid, rows, 256, 0, table.quants(), table.scales(), ids, out,
                    table.cols());
            case Q8_0 -> cuda.launch("get_row_q8_0", grid, rows, 256, 0, table.quants(), table.scales(), ids, out,
                    table.cols());
            case F16, BF16 -> cuda.launch(CudaKernels.halfKernel("get_row", table.type()), grid, rows, 256, 0,
                    table.quants(), ids, out, table.cols());
            case F32 -> cuda.launch("get_row_f32", grid, rows, 256, 0, table.quants(), ids, out, table.cols());
            default -> throw new IllegalArgumentException("embedding rows of " + table.type());
        }
    }

    /** RMSNorm of each row of x[rows][n] times w: floats to h (may be null), quantized to q (may be null). */
    public void rmsNorm(CUdeviceptr x, CUdeviceptr w, CUdeviceptr h, QuantizedVector q, int n, float eps, int rows) {
        checkRows(rows);
        if (n % 32 != 0 || (q != null && q.length() < (long) n * rows)) {
            throw new IllegalArgumentException("rmsnorm of " + rows + " rows of " + n + " (expected a multiple of 32"
                    + (q == null ? "" : " and a quantized output of " + rows + " x " + n + ", got " + q.length())
                    + ")");
        }
        cuda.launch("rmsnorm_quant", blocks(n, 256), rows, 256, 0, x, w, h, q == null ? null : q.quants(),
                q == null ? null : q.scales(), n, eps);
    }

    /** silu(gate) * up per row of gu[rows][2 * ffn]: floats to out (may be null), quantized to q. */
    public void swiglu(CUdeviceptr gu, CUdeviceptr out, QuantizedVector q, int ffn, int rows) {
        checkRows(rows);
        if (ffn % 32 != 0 || (q != null && q.length() < (long) ffn * rows)) {
            throw new IllegalArgumentException("SwiGLU of " + rows + " rows of " + ffn + " (expected a multiple of 32"
                    + (q == null ? "" : " and a quantized output of " + rows + " x " + ffn) + ")");
        }
        cuda.launch("swiglu_quant", blocks(ffn, 256), rows, 256, 0, gu, out, q == null ? null : q.quants(),
                q == null ? null : q.scales(), ffn);
    }

    /**
     * Y[r] = W . X[r] (+ add[r]; {@code add} may be {@code y}) for r &lt; rows, one pass over the weights for up to 64
     * rows: Q4_0/Q8_0 by {@link #DEFAULT_KERNEL}, F16 and BF16 by the chunk GEMV in groups of {@link
     * CudaKernels#BATCH}. Quantized matrices read {@code xq} (rows * cols elements), F16 and BF16 ones {@code x}.
     */
    public void gemv(GpuMatrix w, CUdeviceptr x, QuantizedVector xq, CUdeviceptr add, CUdeviceptr y, int rows) {
        gemv(w, x, xq, add, y, rows, DEFAULT_KERNEL);
    }

    /** {@link #gemv} with the Q4_0/Q8_0 kernel chosen (F16 and BF16 matrices ignore it). */
    public void gemv(GpuMatrix w, CUdeviceptr x, QuantizedVector xq, CUdeviceptr add, CUdeviceptr y, int rows,
            RowKernel kernel) {
        checkRows(rows);
        int groups = blocks(rows, CudaKernels.BATCH);
        int threads = CudaKernels.GEMV_BATCH_WARPS * 32;
        switch (w.type()) {
            case Q4_0, Q8_0 -> {
                if (xq == null || xq.length() < (long) w.cols() * rows) {
                    throw new IllegalArgumentException("row GEMV " + w.rows() + " x " + w.cols() + " " + w.type()
                            + " needs quantized activations of " + rows + " x " + w.cols() + " elements, got "
                            + (xq == null ? "none" : xq.length()));
                }
                boolean q4 = w.type() == GgmlType.Q4_0;
                switch (kernel) {
                    case MMQ -> mmq(w, xq, add, y, rows, FUSED_REDUCE);
                    case MMA -> cuda.launch(q4 ? "gemv_rows_mma_q4_0" : "gemv_rows_mma_q8_0",
                            blocks(w.rows(), MMA_ROWS), blocks(rows, MMA_TOKENS), MMA_THREADS, 0, w.quants(),
                            w.scales(), xq.quants(), xq.scales(), add, y, w.rows(), w.cols(), rows);
                    case DP4A -> cuda.launch(q4 ? "gemv_rows_q4_0" : "gemv_rows_q8_0",
                            blocks(w.rows(), CudaKernels.GEMV_BATCH_WARPS * 2), groups, threads, 0, w.quants(),
                            w.scales(), xq.quants(), xq.scales(), add, y, w.rows(), w.cols(), rows);
                }
            }
            case F16, BF16 -> {
                if (x == null) {
                    throw new IllegalArgumentException("row GEMV of an " + w.type()
                            + " matrix needs the float activations");
                }
                cuda.launch(CudaKernels.halfKernel("gemv_rows", w.type()),
                        blocks(w.rows(), CudaKernels.GEMV_BATCH_WARPS * 2), groups, threads, 0, w.quants(), x, add, y,
                        w.rows(), w.cols(), rows);
            }
            default -> throw new IllegalArgumentException("row GEMV of a " + w.type()
                    + " matrix (the batched decode reads Q4_0, Q8_0, F16, BF16)");
        }
    }

    /**
     * The MMQ kernel; when K is split, the last block of each output tile adds the splits' partial sums in split order
     * (one launch), or ({@code fused} false) the reduce kernel after it; {@link #gemv} passes {@link #FUSED_REDUCE}. Launches on this object's buffers are stream-ordered: two at once would share the counters.
     */
    void mmq(GpuMatrix w, QuantizedVector xq, CUdeviceptr add, CUdeviceptr y, int rows, boolean fused) {
        checkRows(rows);
        if (w.type() != GgmlType.Q4_0 && w.type() != GgmlType.Q8_0) {
            throw new IllegalArgumentException("MMQ row GEMV of a " + w.type() + " matrix (expected Q4_0 or Q8_0)");
        }
        boolean q4 = w.type() == GgmlType.Q4_0;
        int m = w.rows(), k = w.cols();
        int splits = mmqSplits(w.type(), m, k);
        cuda.launch3(q4 ? "gemv_rows_mmq_q4_0" : "gemv_rows_mmq_q8_0", blocks(m, MMQ_ROWS), blocks(rows, MMQ_TOKENS),
                splits, MMQ_THREADS, q4 ? MMQ_SMEM_Q4_0 : MMQ_SMEM_Q8_0, w.quants(), w.scales(), xq.quants(),
                xq.scales(), add, y, splitSums, fused ? splitCounters : null, m, k, rows, splits);
        if (splits > 1 && !fused) {
            cuda.launch("gemv_rows_mmq_reduce", blocks(m, 256), rows, 256, 0, splitSums, add, y, m, rows, splits);
        }
    }

    /** RoPE of each row's q and k at its position, k and v stored at that position of its slot. */
    public void ropeKv(AttentionShape s, CUdeviceptr qkv, CUdeviceptr kcache, CUdeviceptr vcache, CUdeviceptr ids,
            CUdeviceptr freqFactors, int rows) {
        checkRows(rows);
        cuda.launch("rope_kv_rows", s.heads() + 2 * s.kvHeads(), rows, s.headDim(), 0, qkv, kcache, vcache,
                positions(ids), slots(ids), freqFactors, s.heads(), s.kvHeads(), s.headDim(), s.ropeDims(), s.ctx(),
                s.freqBase(), s.freqScale(), s.neox() ? 1 : 0);
    }

    /**
     * Attention of each row's query heads (at q + r * qStride floats) over positions [0, pos] of its slot's cache:
     * out (and outQ, may be null) rows of heads * headDim. {@code scratch} must hold {@code rows} tokens.
     */
    public void attention(AttentionShape s, CUdeviceptr q, int qStride, CUdeviceptr kcache, CUdeviceptr vcache,
            CUdeviceptr ids, AttentionScratch scratch, float scale, CUdeviceptr out, QuantizedVector outQ, int rows) {
        attention(s, q, qStride, kcache, vcache, ids, scratch, scale, out, outQ, rows, grouped(s));
    }

    /**
     * {@link #attention} with the kernel chosen: {@code grouped} = one block per KV head for all its query heads
     * ({@code attn_split_rows_gqa}, heads / kvHeads up to {@link #ATTN_GROUP_MAX}), else one per query head.
     */
    public void attention(AttentionShape s, CUdeviceptr q, int qStride, CUdeviceptr kcache, CUdeviceptr vcache,
            CUdeviceptr ids, AttentionScratch scratch, float scale, CUdeviceptr out, QuantizedVector outQ, int rows,
            boolean grouped) {
        checkRows(rows);
        if (rows > scratch.tokens()) {
            throw new IllegalArgumentException("attention of " + rows + " rows with scratch for " + scratch.tokens());
        }
        int splits;
        if (grouped) {
            if (!grouped(s)) {
                throw new IllegalArgumentException("grouped attention of " + s.heads() + " query heads over "
                        + s.kvHeads() + " KV heads (expected at most " + ATTN_GROUP_MAX + " per KV head)");
            }
            splits = groupedSplits(s);
            CUdeviceptr counters = attentionCounters.get(s);
            if (counters != null) {   // split and merge in one launch (prepared, FUSED_ROW_ATTENTION)
                cuda.launch3("attn_split_rows_gqa_fused", s.kvHeads(), splits, rows, CudaKernels.ATTN_THREADS,
                        groupedSharedBytes(s), q, kcache, vcache, positions(ids), slots(ids), scratch.partO(),
                        scratch.partMl(), s.heads(), s.kvHeads(), s.headDim(), s.ctx(), scale, qStride, counters, out,
                        outQ == null ? null : outQ.quants(), outQ == null ? null : outQ.scales());
                return;
            }
            cuda.launch3("attn_split_rows_gqa", s.kvHeads(), splits, rows, CudaKernels.ATTN_THREADS,
                    groupedSharedBytes(s), q, kcache, vcache, positions(ids), slots(ids), scratch.partO(),
                    scratch.partMl(), s.heads(), s.kvHeads(), s.headDim(), s.ctx(), scale, qStride);
        } else {
            splits = s.splits();
            cuda.launch3("attn_split_rows", s.heads(), splits, rows, CudaKernels.ATTN_THREADS, s.sharedBytes(), q,
                    kcache, vcache, positions(ids), slots(ids), scratch.partO(), scratch.partMl(), s.heads(),
                    s.kvHeads(), s.headDim(), s.ctx(), scale, qStride);
        }
        cuda.launch3("attn_combine", s.heads(), 1, rows, s.headDim(), 0, scratch.partO(), scratch.partMl(), out,
                outQ == null ? null : outQ.quants(), outQ == null ? null : outQ.scales(), s.headDim(), splits);
    }

    /** Most query heads per KV head of the grouped attention kernel; must match ATTN_GROUP_MAX of the .cuh file. */
    public static final int ATTN_GROUP_MAX = 8;

    /** Whether the grouped attention kernel takes {@code s} (the default then). */
    static boolean grouped(AttentionShape s) {
        return s.heads() / s.kvHeads() <= ATTN_GROUP_MAX;
    }

    /**
     * Splits of the grouped kernel: chunks of about 128 positions of the context (at least 2 splits, at most the
     * per-head kernel's, so its scratch suffices). A function of ctx only: a row's sums do not depend on the others.
     * Fewer, fuller blocks than the per-head kernel's 16+ splits, whose partial results for 64 rows of 32 heads were
     * 16 MB per layer for the combine to read back.
     */
    static int groupedSplits(AttentionShape s) {
        return Math.min(s.splits(), Math.max(2, (s.ctx() + 127) / 128));
    }

    static int groupedSharedBytes(AttentionShape s) {
        int splits = groupedSplits(s);
        int cmax = (s.ctx() + splits - 1) / splits;
        return (s.heads() / s.kvHeads()) * (s.headDim() + cmax) * Float.BYTES;
    }

    /** Prepares the row attention kernels for {@code s} (their shared memory); once, before launches or capture. */
    public void prepareAttention(AttentionShape s) {
        if (s.sharedBytes() > 48 * 1024) {
            cuda.allowSharedMemory("attn_split_rows", s.sharedBytes());
        }
        if (grouped(s) && groupedSharedBytes(s) > 48 * 1024) {
            cuda.allowSharedMemory("attn_split_rows_gqa", groupedSharedBytes(s));
            cuda.allowSharedMemory("attn_split_rows_gqa_fused", groupedSharedBytes(s));
        }
        if (grouped(s) && FUSED_ROW_ATTENTION && !attentionCounters.containsKey(s)) {
            CUdeviceptr c = cuda.alloc((long) capacity * s.kvHeads() * Integer.BYTES);
            cuda.fill32(c, 0, (long) capacity * s.kvHeads());
            attentionCounters.put(s, c);
        }
    }

    /** Attention scratch for {@code rows} rows. */
    public static AttentionScratch scratch(CudaContext cuda, AttentionShape s, int rows) {
        long o = (long) rows * s.heads() * s.splits() * s.headDim() * Float.BYTES;
        long ml = (long) rows * s.heads() * s.splits() * 2 * Float.BYTES;
        return new AttentionScratch(cuda.alloc(o), cuda.alloc(ml), rows, o + ml);
    }

    private CUdeviceptr positions(CUdeviceptr ids) {
        return ids.withByteOffset((long) capacity * Integer.BYTES);
    }

    private CUdeviceptr slots(CUdeviceptr ids) {
        return ids.withByteOffset(2L * capacity * Integer.BYTES);
    }
}
