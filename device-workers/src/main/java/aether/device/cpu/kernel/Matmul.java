package aether.device.cpu.kernel;

import aether.device.cpu.KernelPool;
import aether.device.cpu.RangeTask;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.EnumSet;
import java.util.Set;

/**
 * {@code y = x · Wᵀ}, ggml_mul_mat's convention: W has {@code outFeatures} rows of {@code inFeatures} elements in a
 * ggml type's block format, rows contiguous (row stride {@code type.bytesFor(inFeatures)}), read in place — usually a
 * slice of a mapped GGUF, with no alignment assumed. x is f32 {@code [tokens, inFeatures]}, y is f32
 * {@code [tokens, outFeatures]}, both row-major and little-endian; {@code y[t][r] = dot(x[t], W[r])}.
 *
 * <p>Decode (fewer than {@value #GEMM_MIN_TOKENS} tokens; for prepared Q4_0 and for Q8_0 with Q8 activations fewer
 * than {@value #PLANAR_GEMM_MIN_TOKENS}, the multi-row kernels of {@link Q4_0BatchKernels} and {@link Q8_0BatchKernels}
 * reading each weight block once for up to 4 tokens, so a decode step of several sequences costs less per sequence
 * than one) runs fused dot kernels that dequantize in registers. For
 * {@link #Q8_ACTIVATION_TYPES} with {@link Activations#Q8} the activation rows are first quantized to 8-bit blocks
 * (llama.cpp's approach) and the dots are integer per block. JDK 25's Vector API on AVX2 reaches no
 * vpmaddubsw/vpmaddwd, so the products are formed in 16-bit lanes (vpmullw) and pairs folded to ints by hand: for
 * Q8_0 ~35% faster per weight byte than the float path, for Q4_0 on the ggml layout about the same, and for Q4_0
 * {@link PackedWeights#prepare prepared} into its planar layout ~1.5× the float path (one core, weights in L3 and
 * streaming from memory). Q4_K, Q5_K and Q6_K take Q8_K activations (blocks of 256, {@link KQuantQ8Kernels}, as
 * llama.cpp does): 2-2.7× their float path on one core. {@link Activations#AUTO}, the default, picks Q8 for
 * {@link #Q8_BY_DEFAULT} and FLOAT
 * for the rest; Q8 changes the numbers by the activation rounding llama.cpp also has, FLOAT keeps f32 activations. Prefill
 * (more tokens) dequantizes a block of weight rows into a per-thread f32 scratch once and runs a register-blocked
 * f32 micro-kernel over all tokens; {@link Activations} does not apply there.
 * Output rows are split across the {@link KernelPool}'s threads in chunks of {@value #ROW_ALIGN} rows, one cache line
 * of f32 outputs when y is 64-byte aligned.
 *
 * <p>Segments are read and written by the pool's threads, so they must come from a shared, global or automatic
 * arena (or a mapped file's), not a confined one.
 *
 * <p>Thread confinement: an instance holds per-call state and scratch; use it from one thread at a time (one per
 * pool). Scratch grows on the first call with a larger shape and is then reused: once warm, a call allocates nothing.
 */
public final class Matmul implements RangeTask {
    /** How activations meet quantized weights in decode (GEMV). */
    public enum Activations {
        /** Dequantize the weight block in registers and FMA with the f32 activations. */
        FLOAT,
        /** Quantize each activation row to 8-bit blocks once, then int8×int8 dot products per block. */
        Q8,
        /**
         * Per type, the faster of the two as measured on the dev machine: Q8 for {@link #Q8_BY_DEFAULT} (Q8_0, K-quants),
         * FLOAT for the others. Q8 rounds the activations as llama.cpp's CPU backend does for these types.
         */
        AUTO
    }

    /** The types this class multiplies. */
    public static final Set<GgmlType> SUPPORTED = EnumSet.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16,
            GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K,
            GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_NL, GgmlType.IQ4_XS);
    /** The types with an int8 (Q8 activations) decode path; the others always take the float path. */
    public static final Set<GgmlType> Q8_ACTIVATION_TYPES = EnumSet.of(GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K,
            GgmlType.Q5_K, GgmlType.Q6_K);
    /**
     * The types whose int8 path takes Q8_K activations (blocks of 256 with one f32 scale, {@link KQuantQ8Kernels}) as
     * llama.cpp does for K-quants; the other {@link #Q8_ACTIVATION_TYPES} take Q8_0 blocks of 32.
     */
    public static final Set<GgmlType> Q8_K_ACTIVATION_TYPES = EnumSet.of(GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K);
    /**
     * The types {@link Activations#AUTO} multiplies with Q8 activations in decode on the ggml layout: where the int
     * path measured clearly faster (Q8_0: ~1.35× per weight byte on one core; Q4_K 2×, Q6_K 2.7×, best of a
     * round-robin race on one core, {@code KernelRace}). Q4_0 on the ggml layout measured
     * within noise of its float path (0.95-1.05×), so it keeps f32 activations; prepared Q4_0
     * ({@link PackedWeights}) always decodes with Q8 activations.
     */
    public static final Set<GgmlType> Q8_BY_DEFAULT = EnumSet.of(GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K);
    /**
     * Token count from which the blocked GEMM runs instead of repeated fused dots (it pays one dequantization per row
     * and then runs near FMA peak); chosen, not yet measured at the crossover.
     */
    public static final int GEMM_MIN_TOKENS = 4;
    /**
     * For {@link PackedWeights.Layout#Q4_0_PLANAR} weights (the Q4_0 models' decode layout), and for Q8_0 weights with
     * Q8 activations (the default), the token count from which the blocked GEMM runs; below it the multi-row int8
     * kernels ({@link Q4_0BatchKernels}, {@link Q8_0BatchKernels}) read each weight block once for up to 4 tokens,
     * bit-identical per token to the same token multiplied alone (one token runs through them too). Q8_0, raced the
     * same way on [R,2048]x[2048,8192] (2 threads, load 12-14): the multi-row kernels took 0.93× the GEMM's time at
     * R = 12 and 1.26× at R = 16, so it shares the threshold. Measured ({@code KernelRace --batch},
     * BENCHMARKS.md "Small-batch matmul", 2 threads): on [R,4096]x[4096,14336] the multi-row kernels took 0.75× the
     * GEMM's time at R = 12 and 1.10× at R = 16, the GEMM's cost being flat up to 16 tokens (it pads to 16).
     * {@code -Daether.planarGemmMinTokens=N} overrides it process-wide (0: the dispatch before the multi-row kernels,
     * for end-to-end comparisons on one build).
     */
    public static final int PLANAR_GEMM_MIN_TOKENS = 14;
    private static final int DEFAULT_PLANAR_GEMM_MIN_TOKENS = Integer.getInteger("aether.planarGemmMinTokens", PLANAR_GEMM_MIN_TOKENS);
    /**
     * Default activation format for quantized decode: per type, the faster one measured by {@code MatmulBenchmark}
     * ({@link Activations#AUTO}). {@code -Daether.activations=FLOAT|Q8|AUTO} overrides it process-wide, so that an
     * end-to-end run can compare the paths on one build.
     */
    public static final Activations DEFAULT_ACTIVATIONS = defaultActivations();

    /**
     * {@code -Daether.matmul.shareActivations=false} makes every call quantize its activations again even when the
     * caller says they are the ones of the previous call (read when a Matmul is made, so one process can race both).
     */
    public static final String SHARE_ACTIVATIONS_PROPERTY = "aether.matmul.shareActivations";

    /**
     * {@code -Daether.matmul.byteActivations=false} keeps the one-token bodies of the multi-row kernels on 16-bit
     * activations at every row length: the 512-bit Q4_0 one ({@link Q4_0BatchKernels#rowsPlanarWide}) and the Q8_0 one
     * ({@link Q8_0BatchKernels#pairs}). By default rows longer than 4096 columns read them as bytes, half the L1
     * footprint (the FFN down projection: ~1.3-1.5× its speed, BENCHMARKS.md "cpudec"); the same bits either way. Read
     * when a Matmul is made, so one process can race both.
     */
    public static final String BYTE_ACTIVATIONS_PROPERTY = "aether.matmul.byteActivations";

    static final int ROW_ALIGN = 16;
    static final int ROW_BLOCK = 48;   // weight rows dequantized together: 8 micro-tiles of GemmTile.ROWS
    static final int K_BLOCK = 512;    // columns per block: 16 tokens' packed activations (32 KiB) stay in L1

    private final KernelPool pool;
    private final boolean vector;
    private final Activations activations;
    private final boolean wide;                  // 512-bit variants of the kernels that have one (VectorSupport.defaultBits)
    private final boolean batchKernels;          // multi-row int8 kernels for small batches (false: the old dispatch)
    private final int planarGemmMinTokens;
    private final Arena arena = Arena.ofAuto();
    private final float[][] rowScratch;          // per thread: (ROW_BLOCK + 5) x K_BLOCK dequantized weights
    private final float[][] tileOut;             // per thread: sums of a row block, (ROW_BLOCK + 5) x tokens rounded to 16
    private final PackTask packTask = new PackTask();
    private float[] xt = new float[0];           // prefill: x packed k-major in groups of 16 tokens (GemmTile)
    private final QuantizeTask quantizeTask = new QuantizeTask();
    private MemorySegment xq = MemorySegment.NULL;
    private MemorySegment xsum = MemorySegment.NULL;   // Q4_0 decode: -Σx per 32-block per token (Q4_0Kernels.dot)
    private short[] q4ax = new short[0];               // Q4_0 int16 decode: per token Q8Activations.quantizeRowQ4
    private float[] q4dx = new float[0];
    private float[] q4cx = new float[0];               // planar Q4_0: -8·Σq per block and token (blockCorrections)
    private short[] q4wx = new short[0];               // planar Q4_0, 512-bit: q4ax rearranged (Q8Activations.planarWide)
    private MemorySegment q4bx = MemorySegment.NULL;   // the same for the lone last token of an odd count, as bytes
    private MemorySegment q8pairs = MemorySegment.NULL; // Q8_0: the lone last token's quants paired (Q8_0BatchKernels.pairs)
    private final float[][] blockScales;               // per thread: d_w·d_x per block of the row in hand
    private final int[][] quantTmp;                    // per thread: 16 ints for Q4_0BatchKernels.quantizeRowQ4Wide
    private final Q8KRows q8k = new Q8KRows();         // K-quant int8 decode: Q8_K activations
    /** Whether {@code multiply(..., sameInput)} may skip quantizing (see {@link #SHARE_ACTIVATIONS_PROPERTY}). */
    private final boolean shareActivations;
    /** Whether long rows' lone token reads byte activations (see {@link #BYTE_ACTIVATIONS_PROPERTY}). */
    private final boolean byteActivations;
    // What the Q8 scratch holds: the activations of the last call that quantized, by kind, x's native address and
    // shape (cols x tokens, which is also the range's length).
    // quantKind 0 = nothing valid (also while a quantization runs, so a failed one is never reused).
    private int quantKind;
    private long quantAddress;
    private int quantCols;
    private int quantTokens;
    private int quantBlocks;
    private long quantizations;                  // calls that quantized their activations (tests, diagnostics)

    // Per-call state, set by multiply() before dispatch (the pool's hand-off publishes it to the workers).
    private GgmlType type;
    private MemorySegment w;
    private MemorySegment x;
    private MemorySegment y;
    private int rows;
    private int cols;
    private int tokens;
    private long rowBytes;
    private boolean useQ8;
    private boolean q4Ints;          // vector Q4_0 decode in 16-bit lanes: activations in q4ax/q4dx
    private boolean q8Batch;         // Q8_0 decode through the multi-row kernels (Q8_0BatchKernels), any token count
    private boolean kInts;           // K-quant int8 decode (vector or scalar): activations in q8k
    private MemorySegment planar;    // non-NULL: decode reads PackedWeights' Q4_0_PLANAR copy
    private MemorySegment gemmPlanar = MemorySegment.NULL;   // non-NULL: prefill dequantizes from that copy
    private int paddedBlocks;        // blocks per row (and per token in q4ax) of the Q4_0 int16 kernels
    private boolean gemm;            // this call runs the blocked GEMM (set by run() before dispatch)

    /** Vector kernels if available (see {@link VectorSupport}) and the default activation format. */
    public Matmul(KernelPool pool) {
        this(pool, VectorSupport.enabledByDefault(), DEFAULT_ACTIVATIONS, VectorSupport.defaultBits(),
                DEFAULT_PLANAR_GEMM_MIN_TOKENS);
    }

    /**
     * @param vector      run the vector kernels (requires {@link VectorSupport#available()}), else the scalar references
     * @param activations how quantized weights meet activations in decode
     */
    public Matmul(KernelPool pool, boolean vector, Activations activations) {
        this(pool, vector, activations, VectorSupport.defaultBits(), DEFAULT_PLANAR_GEMM_MIN_TOKENS);
    }

    /**
     * @param vectorBits 512 runs the 512-bit variants of the kernels that have one (F16, Q4_K and Q6_K decode, and
     *                   prepared Q4_0 decode, one-row and multi-row ({@link Q4_0BatchKernels#rowsPlanarWide}); requires
     *                   {@link VectorSupport#wideAvailable()}), 256 the
     *                   256-bit kernels only
     */
    public Matmul(KernelPool pool, boolean vector, Activations activations, int vectorBits) {
        this(pool, vector, activations, vectorBits, DEFAULT_PLANAR_GEMM_MIN_TOKENS);
    }

    /**
     * @param vectorBits          as {@link #Matmul(KernelPool, boolean, Activations, int)}
     * @param planarGemmMinTokens for {@link PackedWeights.Layout#Q4_0_PLANAR} weights with vector kernels, the token
     *                            count from which the GEMM runs; below it the multi-row kernels ({@link Q4_0BatchKernels});
     *                            the same for Q8_0 with Q8 activations ({@link Q8_0BatchKernels}).
     *                            0 keeps the dispatch before them (the one-row kernel per token below
     *                            {@link #GEMM_MIN_TOKENS}, the GEMM from there), for benchmarks that compare the two;
     *                            the default is {@link #PLANAR_GEMM_MIN_TOKENS} (or {@code aether.planarGemmMinTokens})
     */
    public Matmul(KernelPool pool, boolean vector, Activations activations, int vectorBits, int planarGemmMinTokens) {
        if (vectorBits != 256 && vectorBits != 512) {
            throw new IllegalArgumentException("matmul: vector width %d bits (expected 256 or 512)".formatted(vectorBits));
        }
        if (vector && vectorBits == 512 && !VectorSupport.wideAvailable()) {
            throw new IllegalStateException("512-bit vector kernels requested but the preferred vector size is below 512 bits");
        }
        this.wide = vector && vectorBits == 512;
        if (vector && !VectorSupport.available()) {
            throw new IllegalStateException("vector kernels requested but jdk.incubator.vector / 256-bit vectors unavailable");
        }
        this.pool = pool;
        this.vector = vector;
        this.activations = activations;
        this.batchKernels = planarGemmMinTokens > 0;
        this.planarGemmMinTokens = planarGemmMinTokens;
        int n = vector ? pool.threads() : 0;
        this.rowScratch = new float[n][(ROW_BLOCK + GemmTile.ROWS - 1) * K_BLOCK];
        this.tileOut = new float[n][0];
        this.blockScales = new float[n][0];
        this.quantTmp = new int[n][16];
        this.shareActivations = Boolean.parseBoolean(System.getProperty(SHARE_ACTIVATIONS_PROPERTY, "true"));
        this.byteActivations = Boolean.parseBoolean(System.getProperty(BYTE_ACTIVATIONS_PROPERTY, "true"));
    }

    /**
     * Computes {@code y[t][r] = Σ_i x[t][i] · W[r][i]} for {@code t < tokens}, {@code r < outFeatures}.
     *
     * @param weights     {@code outFeatures} rows of {@code inFeatures} elements of {@code type}, contiguous
     * @param x           f32 activations {@code [tokens, inFeatures]}
     * @param y           f32 output {@code [tokens, outFeatures]}, overwritten; must not overlap {@code x}
     * @throws IllegalArgumentException if the type is unsupported, {@code inFeatures} is not a whole number of blocks,
     *                                  or a segment is smaller than its shape needs
     */
    public void multiply(GgmlType type, MemorySegment weights, int outFeatures, int inFeatures,
                         MemorySegment x, int tokens, MemorySegment y) {
        if (!SUPPORTED.contains(type)) {
            throw new IllegalArgumentException("matmul: weight type %s is not supported (expected one of %s)".formatted(type, SUPPORTED));
        }
        if (outFeatures < 0 || inFeatures < 0 || tokens < 0) {
            throw new IllegalArgumentException("matmul: negative shape out=%d in=%d tokens=%d".formatted(outFeatures, inFeatures, tokens));
        }
        long rowBytes = type.bytesFor(inFeatures);   // rejects a partial block with the type's own message
        long needW = Math.multiplyExact(rowBytes, (long) outFeatures);
        if (weights.byteSize() < needW) {   // messages built only on failure: a call allocates nothing
            throw tooSmall("weights " + type, outFeatures, inFeatures, needW, weights);
        }
        run(type, weights, MemorySegment.NULL, 0, outFeatures, inFeatures, x, tokens, y, false);
    }

    /**
     * {@link #multiply(GgmlType, MemorySegment, int, int, MemorySegment, int, MemorySegment)} on prepared weights. For
     * {@link PackedWeights.Layout#Q4_0_PLANAR}, decode (fewer than {@value #PLANAR_GEMM_MIN_TOKENS} tokens) always quantizes
     * the activations to Q8 (the layout exists for the int16 kernel; use {@link PackedWeights#wrap} for f32
     * activations) and the prefill GEMM dequantizes from the planar copy (the same floats as from the ggml layout;
     * the scalar paths without the vector module read {@link PackedWeights#source()}); for {@link
     * PackedWeights.Layout#GGUF} this is exactly the ggml-layout multiply.
     *
     * @param x f32 activations {@code [tokens, weights.inFeatures()]}
     * @param y f32 output {@code [tokens, weights.outFeatures()]}, overwritten; must not overlap {@code x}
     * @throws IllegalArgumentException if a segment is smaller than its shape needs
     */
    public void multiply(PackedWeights weights, MemorySegment x, int tokens, MemorySegment y) {
        multiply(weights, x, tokens, y, false);
    }

    /**
     * {@link #multiply(PackedWeights, MemorySegment, int, MemorySegment)} for a caller that knows whether {@code x} is
     * the previous call's input: with {@code sameInput}, the caller guarantees that {@code x} holds the values it held
     * when this instance last quantized activations from the same native memory range (as a compiled graph knows of
     * the q, k and v projections of one normed row, or gate and up), and a decode call whose activations were
     * quantized by that call to the same format (same type family, shape and layout) reuses them instead of
     * quantizing again: the same bits, one pass over the row less. Any other call quantizes as usual, so a wrong
     * {@code false} only costs time; a wrong {@code true} would multiply stale activations.
     */
    public void multiply(PackedWeights weights, MemorySegment x, int tokens, MemorySegment y, boolean sameInput) {
        if (tokens < 0) {
            throw new IllegalArgumentException("matmul: negative token count %d".formatted(tokens));
        }
        GgmlType t = weights.type();
        boolean isPlanar = weights.layout() == PackedWeights.Layout.Q4_0_PLANAR;
        run(t, weights.source(), isPlanar ? weights.packed() : MemorySegment.NULL, isPlanar ? weights.paddedBlocks() : 0,
                weights.outFeatures(), weights.inFeatures(), x, tokens, y, sameInput);
    }

    private void run(GgmlType type, MemorySegment weights, MemorySegment planarWeights, int planarBlocks,
                     int outFeatures, int inFeatures, MemorySegment x, int tokens, MemorySegment y, boolean sameInput) {
        long needX = Math.multiplyExact((long) tokens * inFeatures, Float.BYTES);
        long needY = Math.multiplyExact((long) tokens * outFeatures, Float.BYTES);
        if (x.byteSize() < needX) {
            throw tooSmall("x f32", tokens, inFeatures, needX, x);
        }
        if (y.byteSize() < needY) {
            throw tooSmall("y f32", tokens, outFeatures, needY, y);
        }
        if (tokens == 0 || outFeatures == 0) {
            return;
        }
        boolean q8Wanted = switch (activations) {
            case FLOAT -> false;
            case Q8 -> Q8_ACTIVATION_TYPES.contains(type);
            case AUTO -> Q8_BY_DEFAULT.contains(type);
        };
        boolean batched = batchKernels && vector && planarWeights.byteSize() > 0 && tokens < planarGemmMinTokens;
        // Q8_0 with Q8 activations: the multi-row kernels below the same threshold (Q8_0 is never prepared)
        this.q8Batch = batchKernels && vector && type == GgmlType.Q8_0 && q8Wanted && planarWeights.byteSize() == 0
                && tokens < planarGemmMinTokens;
        boolean decode = tokens < GEMM_MIN_TOKENS || batched || q8Batch;
        this.gemm = vector && !decode;
        this.type = type;
        this.w = weights;
        this.x = x;
        this.y = y;
        this.rows = outFeatures;
        this.cols = inFeatures;
        this.tokens = tokens;
        this.rowBytes = type.bytesFor(inFeatures);
        this.planar = decode ? planarWeights : MemorySegment.NULL;
        this.gemmPlanar = decode ? MemorySegment.NULL : planarWeights;
        boolean isPlanar = planar.byteSize() > 0;
        // the scalar references quantize for every token count (they have no GEMM); the planar layout only in decode
        this.useQ8 = isPlanar || (q8Wanted && (!vector || decode) && planarWeights.byteSize() == 0);
        this.q4Ints = useQ8 && vector && type == GgmlType.Q4_0;
        this.kInts = useQ8 && Q8_K_ACTIVATION_TYPES.contains(type);
        this.paddedBlocks = planarWeights.byteSize() > 0 ? planarBlocks : inFeatures / 32;
        if (useQ8) {
            if (kInts) {
                q8k.reserve(inFeatures, tokens);
            } else if (q4Ints) {
                int perToken = paddedBlocks * Q8Activations.Q4_LANES;
                if (q4ax.length < perToken * tokens) {
                    q4ax = new short[perToken * tokens];
                    q4dx = new float[paddedBlocks * tokens];
                    q4cx = new float[paddedBlocks * tokens];
                }
                if (wide && isPlanar && q4wx.length < paddedBlocks * Q8Activations.Q4_WIDE_LANES * tokens) {
                    q4wx = new short[paddedBlocks * Q8Activations.Q4_WIDE_LANES * tokens];
                }
                if (wide && isPlanar && q4bx.byteSize() < (long) paddedBlocks * Q8Activations.Q4_WIDE_LANES) {
                    q4bx = arena.allocate((long) paddedBlocks * Q8Activations.Q4_WIDE_LANES, 64);
                }
                for (int i = 0; i < blockScales.length; i++) {
                    if (blockScales[i].length < Q4_0BatchKernels.scratchFloats(paddedBlocks)) {
                        blockScales[i] = new float[Q4_0BatchKernels.scratchFloats(paddedBlocks)];
                    }
                }
            } else {
                long need = Q8Activations.rowBytes(inFeatures) * tokens;
                if (xq.byteSize() < need) {
                    xq = arena.allocate(need, 64);
                }
                if (lonePairs() && q8pairs.byteSize() < inFeatures) {
                    q8pairs = arena.allocate(inFeatures, 64);
                }
                for (int i = 0; q8Batch && i < blockScales.length; i++) {
                    if (blockScales[i].length < Q8_0BatchKernels.SCRATCH_FLOATS) {
                        blockScales[i] = new float[Q8_0BatchKernels.SCRATCH_FLOATS];
                    }
                }
            }
            // which scratch and arrangement this call's activations take: 1 Q8_K, 2 Q4 int16, 3 Q4 int16 with the
            // 512-bit planar copy, 4 Q8_0 blocks, 5 Q8_0 blocks with the last token's quants paired
            int kind = kInts ? 1 : q4Ints ? (wide && isPlanar ? 3 : 2) : lonePairs() ? 5 : 4;
            boolean reuse = sameInput && shareActivations && x.isNative() && quantKind == kind
                    && quantAddress == x.address() && quantCols == inFeatures
                    && quantTokens == tokens && quantBlocks == paddedBlocks;
            if (!reuse) {
                quantKind = 0;
                quantizations++;
                pool.parallelFor(tokens, 1, quantizeTask);
                quantKind = x.isNative() ? kind : 0;
                quantAddress = x.address();
                quantCols = inFeatures;
                quantTokens = tokens;
                quantBlocks = paddedBlocks;
            }
        }
        if (inFeatures == 0) {
            y.asSlice(0, (long) tokens * outFeatures * Float.BYTES).fill((byte) 0);
            return;
        }
        if (vector && !useQ8 && type == GgmlType.Q4_0 && decode) {
            long perToken = 4L * (inFeatures / 32);   // O(tokens·in) on the caller, against O(tokens·in·out) in the pool
            if (xsum.byteSize() < perToken * tokens) {
                xsum = arena.allocate(perToken * tokens, 64);
            }
            for (int t = 0; t < tokens; t++) {
                Q4_0Kernels.blockSums(x, (long) t * inFeatures * Float.BYTES, inFeatures, xsum, t * perToken);
            }
        }
        if (vector && !decode) {
            int groups = (tokens + GemmTile.TOKENS - 1) / GemmTile.TOKENS;
            long need = (long) groups * inFeatures * GemmTile.TOKENS;
            if (need > Integer.MAX_VALUE - 16) {
                throw new IllegalArgumentException("matmul: %d tokens x %d inputs exceed the packing buffer; split the tokens"
                        .formatted(tokens, inFeatures));
            }
            if (xt.length < need) {
                xt = new float[(int) need];
            }
            int sums = (ROW_BLOCK + GemmTile.ROWS - 1) * groups * GemmTile.TOKENS;
            for (int i = 0; i < tileOut.length; i++) {
                if (tileOut[i].length < sums) {
                    tileOut[i] = new float[sums];
                }
            }
            pool.parallelFor(groups, 1, packTask);
        }
        pool.parallelFor(outFeatures, ROW_ALIGN, this);
        this.w = null;
        this.x = null;
        this.y = null;
        this.planar = MemorySegment.NULL;
        this.gemmPlanar = MemorySegment.NULL;
    }

    /**
     * Whether the 512-bit multi-row Q4_0 kernel reads this call's last token as bytes (an odd count, long rows:
     * {@link Q4_0BatchKernels#rowsPlanarWide}); its quantize pass then writes that token's row there instead.
     */
    private boolean loneBytes() {
        return wide && batchKernels && byteActivations && tokens % 2 == 1
                && paddedBlocks > Q4_0BatchKernels.BYTE_ACTIVATIONS_MIN_BLOCKS;
    }

    /**
     * Whether the Q8_0 multi-row kernel reads this call's last token's quants paired (an odd count, long rows:
     * {@link Q8_0BatchKernels#rows(MemorySegment, long, int, int, MemorySegment, long, MemorySegment, int, int,
     * MemorySegment, long, float[])}).
     */
    private boolean lonePairs() {
        return q8Batch && byteActivations && tokens % 2 == 1 && cols / 32 > Q8_0BatchKernels.PAIRS_MIN_BLOCKS;
    }

    /** How many calls so far quantized their activations (a call that reused the previous ones does not count). */
    public long activationQuantizations() {
        return quantizations;
    }

    private static Activations defaultActivations() {
        String v = System.getProperty("aether.activations", "AUTO");
        try {
            return Activations.valueOf(v.trim().toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("aether.activations: '%s' is not one of FLOAT, Q8, AUTO".formatted(v), e);
        }
    }

    private static IllegalArgumentException tooSmall(String what, long dim0, long dim1, long need, MemorySegment s) {
        return new IllegalArgumentException("matmul: %s [%d x %d] needs %,d bytes, segment has %,d"
                .formatted(what, dim0, dim1, need, s.byteSize()));
    }

    /** Pool entry point: output rows {@code [from, to)}. */
    @Override
    public void run(int from, int to, int thread) {
        if (gemm) {
            gemm(from, to, thread);
        } else {
            gemv(from, to, thread);
        }
    }

    /**
     * Decode rows {@code [from, to)}: one switch per chunk, then a per-type row loop, so each type's hot loop is its
     * own small compile unit (a single loop dispatching to every kernel measured ~30% slower: C2 inlined them all
     * into one huge method).
     */
    private void gemv(int from, int to, int thread) {
        long xs = (long) cols * Float.BYTES;
        long ys = (long) rows * Float.BYTES;
        if (kInts) {
            if (vector) {
                switch (type) {
                    case Q4_K -> {
                        if (wide) {
                            KQuantQ8Kernels.rowsQ4_KWide(w, rowBytes, from, to, q8k, tokens, y, ys);
                        } else {
                            KQuantQ8Kernels.rowsQ4_K(w, rowBytes, from, to, q8k, tokens, y, ys);
                        }
                    }
                    case Q5_K -> KQuantQ8Kernels.rowsQ5_K(w, rowBytes, from, to, q8k, tokens, y, ys);
                    case Q6_K -> {
                        if (wide) {
                            KQuantQ8Kernels.rowsQ6_KWide(w, rowBytes, from, to, q8k, tokens, y, ys);
                        } else {
                            KQuantQ8Kernels.rowsQ6_K(w, rowBytes, from, to, q8k, tokens, y, ys);
                        }
                    }
                    default -> throw new AssertionError(type);
                }
            } else {
                for (int r = from; r < to; r++) {
                    for (int t = 0; t < tokens; t++) {
                        float v = type == GgmlType.Q6_K ? ScalarDot.q6_KQ8K(w, r * rowBytes, q8k, t)
                                : ScalarDot.q4_KQ8K(w, r * rowBytes, q8k, t, type == GgmlType.Q5_K);
                        y.set(BlockLayouts.F32, t * ys + 4L * r, v);
                    }
                }
            }
            return;
        }
        if (useQ8) {
            long q8 = Q8Activations.rowBytes(cols);
            boolean isPlanar = planar.byteSize() > 0;
            if (q4Ints) {
                int axStride = paddedBlocks * Q8Activations.Q4_LANES;
                if (isPlanar && batchKernels && wide) {   // first: a row gets the same bits alone or batched
                    Q4_0BatchKernels.rowsPlanarWide(planar, paddedBlocks, from, to, q4wx, paddedBlocks * Q8Activations.Q4_WIDE_LANES,
                            loneBytes() ? q4bx : null, q4dx, q4cx, paddedBlocks, tokens, y, ys, blockScales[thread]);
                } else if (isPlanar && batchKernels) {
                    Q4_0BatchKernels.rowsPlanar(planar, paddedBlocks, from, to, q4ax, axStride, q4dx, q4cx, paddedBlocks, tokens,
                            y, ys, blockScales[thread]);
                } else if (isPlanar && wide) {
                    Q4_0Kernels.rowsPlanarWide(planar, paddedBlocks, from, to, q4wx, paddedBlocks * Q8Activations.Q4_WIDE_LANES,
                            q4dx, q4cx, paddedBlocks, tokens, y, ys, blockScales[thread]);
                } else if (isPlanar) {
                    Q4_0Kernels.rowsPlanar(planar, paddedBlocks, from, to, q4ax, axStride, q4dx, q4cx, paddedBlocks, tokens, y, ys,
                            blockScales[thread]);
                } else {
                    Q4_0Kernels.rowsQ8(w, rowBytes, from, to, q4ax, axStride, q4dx, paddedBlocks, tokens, cols, y, ys,
                            blockScales[thread]);
                }
            } else if (q8Batch) {   // every token count: a row gets the same bits alone or batched
                Q8_0BatchKernels.rows(w, rowBytes, from, to, xq, q8, lonePairs() ? q8pairs : null, tokens, cols, y, ys,
                        blockScales[thread]);
            } else if (vector) {
                Q8_0Kernels.rowsQ8(w, rowBytes, from, to, xq, q8, tokens, cols, y, ys);
            } else {
                long planarRow = PackedWeights.q4PlanarRowBytes(paddedBlocks);
                for (int r = from; r < to; r++) {
                    for (int t = 0; t < tokens; t++) {
                        float v = isPlanar ? ScalarDot.q4_0PlanarQ8(planar, r * planarRow, paddedBlocks, xq, t * q8, cols)
                                : type == GgmlType.Q8_0 ? ScalarDot.q8_0Q8(w, r * rowBytes, xq, t * q8, cols)
                                : ScalarDot.q4_0Q8(w, r * rowBytes, xq, t * q8, cols);
                        y.set(BlockLayouts.F32, t * ys + 4L * r, v);
                    }
                }
            }
            return;
        }
        if (!vector) {
            for (int r = from; r < to; r++) {
                for (int t = 0; t < tokens; t++) {
                    y.set(BlockLayouts.F32, t * ys + 4L * r, scalarDot(r * rowBytes, t * xs));
                }
            }
            return;
        }
        switch (type) {
            case F32 -> FloatKernels.rowsF32(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case F16 -> FloatKernels.rowsF16(w, rowBytes, from, to, x, xs, tokens, cols, y, ys, wide);
            case BF16 -> FloatKernels.rowsBF16(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case Q8_0 -> Q8_0Kernels.rows(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case Q4_0 -> Q4_0Kernels.rows(w, rowBytes, from, to, x, xs, xsum, tokens, cols, y, ys);
            case Q4_1 -> Legacy5Kernels.rowsQ4_1(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case Q5_0 -> Legacy5Kernels.rowsQ5_0(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case Q5_1 -> Legacy5Kernels.rowsQ5_1(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case Q4_K -> KQuantKernels.rowsQ4_K(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case Q6_K -> KQuantKernels.rowsQ6_K(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case Q5_K -> KQuantKernels.rowsQ5_K(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case Q2_K -> KQuantKernels.rowsQ2_K(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case Q3_K -> KQuantKernels.rowsQ3_K(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case IQ4_NL -> Iq4Kernels.rowsNl(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            case IQ4_XS -> Iq4Kernels.rowsXs(w, rowBytes, from, to, x, xs, tokens, cols, y, ys);
            default -> throw new AssertionError(type);
        }
    }

    private float scalarDot(long wOff, long xOff) {
        return switch (type) {
            case F32 -> ScalarDot.f32(w, wOff, x, xOff, cols);
            case F16 -> ScalarDot.f16(w, wOff, x, xOff, cols);
            case BF16 -> ScalarDot.bf16(w, wOff, x, xOff, cols);
            case Q8_0 -> ScalarDot.q8_0(w, wOff, x, xOff, cols);
            case Q4_0 -> ScalarDot.q4_0(w, wOff, x, xOff, cols);
            case Q4_1 -> ScalarDot.q4_1(w, wOff, x, xOff, cols);
            case Q5_0 -> ScalarDot.q5_0(w, wOff, x, xOff, cols);
            case Q5_1 -> ScalarDot.q5_1(w, wOff, x, xOff, cols);
            case Q4_K -> ScalarDot.q4_K(w, wOff, x, xOff, cols);
            case Q6_K -> ScalarDot.q6_K(w, wOff, x, xOff, cols);
            case Q5_K -> ScalarDot.q5_K(w, wOff, x, xOff, cols);
            case Q2_K -> ScalarDot.q2_K(w, wOff, x, xOff, cols);
            case Q3_K -> ScalarDot.q3_K(w, wOff, x, xOff, cols);
            case IQ4_NL -> ScalarDot.iq4_nl(w, wOff, x, xOff, cols);
            case IQ4_XS -> ScalarDot.iq4_xs(w, wOff, x, xOff, cols);
            default -> throw new AssertionError(type);
        };
    }

    /**
     * Dequantizes elements {@code [k0, k0 + n)} of weight row {@code r} into {@code dst[dstOff]} as f32. Into a heap
     * array with {@code intoArray}, not a heap segment: see {@link #gemm} for why.
     */
    private void dequant(int r, int k0, int n, float[] dst, int dstOff) {
        long off = r * rowBytes + type.bytesFor(k0);
        int blocks = n / type.blockSize();
        switch (type) {
            case F16 -> FloatKernels.dequantF16(w, off, n, dst, dstOff);
            case BF16 -> FloatKernels.dequantBF16(w, off, n, dst, dstOff);
            case Q8_0 -> Q8_0Kernels.dequant(w, off, blocks, dst, dstOff);
            case Q4_0 -> Q4_0Kernels.dequant(w, off, blocks, dst, dstOff);
            case Q4_1 -> Legacy5Kernels.dequantQ4_1(w, off, blocks, dst, dstOff);
            case Q5_0 -> Legacy5Kernels.dequantQ5(w, off, blocks, dst, dstOff, false);
            case Q5_1 -> Legacy5Kernels.dequantQ5(w, off, blocks, dst, dstOff, true);
            case Q4_K -> KQuantKernels.dequantQ4_K(w, off, blocks, dst, dstOff);
            case Q6_K -> KQuantKernels.dequantQ6_K(w, off, blocks, dst, dstOff);
            case Q5_K -> KQuantKernels.dequantQ5_K(w, off, blocks, dst, dstOff);
            case Q2_K -> KQuantKernels.dequantQ2Q3(w, off, blocks, dst, dstOff, false);
            case Q3_K -> KQuantKernels.dequantQ2Q3(w, off, blocks, dst, dstOff, true);
            case IQ4_NL -> Iq4Kernels.dequant(w, off, n, dst, dstOff, false);
            case IQ4_XS -> Iq4Kernels.dequant(w, off, n, dst, dstOff, true);
            default -> throw new AssertionError(type);
        }
    }

    /**
     * Blocked GEMM over rows {@code [from, to)}: for each block of {@value #ROW_BLOCK} rows and {@value #K_BLOCK}
     * columns the weights are dequantized (or, for F32, copied) once into a per-thread f32 scratch (~100 KiB, in
     * L2), then every group of 16 tokens (packed k-major by {@link PackTask}, 32 KiB per column block, in L1) is
     * multiplied by 6-row micro-tiles ({@link GemmTile#tile6x16}); partial sums over column blocks accumulate in a
     * per-thread buffer laid out as the tile's lanes (row-major per weight row, 16 tokens contiguous), copied into y
     * once per row block. A partial last micro-tile reads up to 5 rows past the block
     * (scratch has room; their results are not stored); a partial token group multiplies zero padding.
     *
     * <p>The dequantizers write the scratch through {@code FloatVector.intoArray}, never through a segment view of it
     * ({@code MemorySegment.ofArray(float[])}): C2 intrinsifies a vector store into a heap segment only when the
     * JDK-internal {@code ScopedMemoryAccess.storeIntoMemorySegmentScopedInternal}, which every {@code intoMemorySegment}
     * in the process shares, has a one-type receiver profile at the time the kernel compiles. The Vector API's own
     * Java fallbacks (e.g. {@code reinterpretAsInts} while a decode kernel still runs interpreted) store into
     * {@code byte[]}-backed segments, so in a process whose first step was a decode step that profile already held
     * two heap types when the GEMM's dequantizer compiled: the store was not intrinsified, every vector was boxed
     * (7.8 GB allocated per 128-token Q8_0 prefill) and prefill ran at a third of its speed for the life of the
     * process. {@code intoArray} on a {@code float[]} has a static type and no such profile
     * ({@code JitOrderAllocationTest} pins it).
     */
    private void gemm(int from, int to, int thread) {
        float[] ws = rowScratch[thread];
        float[] out = tileOut[thread];
        int groups = (tokens + GemmTile.TOKENS - 1) / GemmTile.TOKENS;
        int tp = groups * GemmTile.TOKENS;   // row stride of the sums in out
        for (int rb = from; rb < to; rb += ROW_BLOCK) {
            int nr = Math.min(ROW_BLOCK, to - rb);
            for (int kb = 0; kb < cols; kb += K_BLOCK) {
                int kc = Math.min(K_BLOCK, cols - kb);
                for (int r = 0; r < nr; r++) {
                    if (type == GgmlType.F32) {
                        MemorySegment.copy(w, BlockLayouts.F32, (rb + r) * rowBytes + 4L * kb, ws, r * kc, kc);
                    } else if (type == GgmlType.F16) {
                        FloatKernels.dequantF16(w, (rb + r) * rowBytes + 2L * kb, kc, ws, r * kc);
                    } else if (gemmPlanar.byteSize() > 0) {   // same floats as dequant() of the ggml layout
                        Q4_0Kernels.dequantPlanar(gemmPlanar, (rb + r) * PackedWeights.q4PlanarRowBytes(paddedBlocks),
                                paddedBlocks, kb / 32, kc / 32, ws, r * kc);
                    } else {
                        dequant(rb + r, kb, kc, ws, r * kc);
                    }
                }
                for (int g = 0; g < groups; g++) {
                    int x0 = (g * cols + kb) * GemmTile.TOKENS;
                    for (int r = 0; r < nr; r += GemmTile.ROWS) {
                        GemmTile.tile6x16(ws, r * kc, kc, xt, x0, kc, out, r * tp + g * GemmTile.TOKENS, tp, kb == 0);
                    }
                }
            }
            for (int t = 0; t < tokens; t++) {   // the block's sums, row-major per weight row, into y[t][rb + r]
                long o = ((long) t * rows + rb) * Float.BYTES;
                for (int r = 0; r < nr; r++) {
                    y.set(BlockLayouts.F32, o + 4L * r, out[r * tp + t]);
                }
            }
        }
    }

    /** Packs token groups {@code [from, to)} of x into {@link #xt}: group g, column k, token t at {@code (g·cols + k)·16 + t}. */
    private final class PackTask implements RangeTask {
        @Override
        public void run(int from, int to, int thread) {
            for (int g = from; g < to; g++) {
                int base = g * cols * GemmTile.TOKENS;
                for (int t = 0; t < GemmTile.TOKENS; t++) {
                    int token = g * GemmTile.TOKENS + t;
                    if (token < tokens) {
                        long src = (long) token * cols * Float.BYTES;
                        for (int k = 0; k < cols; k++) {
                            xt[base + k * GemmTile.TOKENS + t] = x.get(BlockLayouts.F32, src + 4L * k);
                        }
                    } else {
                        for (int k = 0; k < cols; k++) {
                            xt[base + k * GemmTile.TOKENS + t] = 0f;
                        }
                    }
                }
            }
        }
    }

    /** Quantizes activation rows (tokens) {@code [from, to)} into the Q8 scratch. */
    private final class QuantizeTask implements RangeTask {
        @Override
        public void run(int from, int to, int thread) {
            long q8Row = Q8Activations.rowBytes(cols);
            for (int t = from; t < to; t++) {
                if (kInts) {
                    q8k.quantize(t, x, (long) t * cols * Float.BYTES);
                } else if (q4Ints) {
                    if (wide) {   // the same outputs, the block quantization in 512-bit lanes
                        Q4_0BatchKernels.quantizeRowQ4Wide(x, (long) t * cols * Float.BYTES, cols, paddedBlocks, q4ax,
                                t * paddedBlocks * Q8Activations.Q4_LANES, q4dx, t * paddedBlocks, quantTmp[thread]);
                    } else {
                        Q8Activations.quantizeRowQ4(x, (long) t * cols * Float.BYTES, cols, paddedBlocks, q4ax,
                                t * paddedBlocks * Q8Activations.Q4_LANES, q4dx, t * paddedBlocks);
                    }
                    Q8Activations.blockCorrections(q4ax, t * paddedBlocks * Q8Activations.Q4_LANES, paddedBlocks, q4cx,
                            t * paddedBlocks);
                    if (wide && planar.byteSize() > 0 && loneBytes() && t == tokens - 1) {
                        // the multi-row kernel's one-token body: bytes (Q4_0BatchKernels.rowsPlanarWide)
                        Q4_0BatchKernels.activationBytes(q4ax, t * paddedBlocks * Q8Activations.Q4_LANES, paddedBlocks,
                                q4bx, 0);
                    } else if (wide && planar.byteSize() > 0) {
                        Q8Activations.planarWide(q4ax, t * paddedBlocks * Q8Activations.Q4_LANES, paddedBlocks, q4wx,
                                t * paddedBlocks * Q8Activations.Q4_WIDE_LANES);
                    }
                } else {
                    Q8Activations.quantizeRow(x, (long) t * cols * Float.BYTES, cols, xq, t * q8Row);
                    if (lonePairs() && t == tokens - 1) {
                        Q8_0BatchKernels.pairs(xq, t * q8Row, cols, q8pairs);
                    }
                }
            }
        }
    }
}
