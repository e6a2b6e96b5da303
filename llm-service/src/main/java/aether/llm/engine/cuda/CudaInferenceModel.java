package aether.llm.engine.cuda;

import aether.device.cuda.CudaBench;
import aether.device.cuda.CudaContext;
import aether.device.cuda.CudaKernels;
import aether.device.cuda.CudaKernels.AttentionScratch;
import aether.device.cuda.CudaKernels.AttentionShape;
import aether.device.cuda.CudaKernels.FusionCounters;
import aether.device.cuda.CudaPrefill;
import aether.device.cuda.CudaRowKernels;
import aether.device.cuda.GpuMatrix;
import aether.device.cuda.KernelProfile;
import aether.device.cuda.QuantizedVector;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.Sequence;
import aether.llm.gguf.GgufFile;
import aether.llm.gguf.TensorInfo;
import aether.llm.model.ModelConfig;
import aether.llm.model.ModelLoadException;
import aether.llm.model.ModelWeights;
import aether.llm.sampling.Argmax;
import aether.llm.sampling.CandidateRequest;
import aether.llm.sampling.Candidates;
import aether.llm.sampling.LogitAdjustments;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;
import jcuda.driver.CUdeviceptr;

/**
 * A llama-architecture model on one CUDA GPU. Weights are uploaded once (Q4_0/Q8_0 repacked on the device, Q/K/V and
 * gate/up stacked so each pair or triple is one GEMV), the KV cache is f16 in device memory ({@code maxSequences}
 * slots of {@code contextSize} positions), and one token's forward pass is 6 kernels per layer on one stream (10 with
 * the {@link DecodeFusions} off: RMSNorm, SwiGLU and RoPE then run as launches of their own). The
 * pass is captured as a CUDA graph on first use and replayed for every token; what changes per token (token id,
 * position, slot) is written to a small device buffer the kernels read, so the graph stays valid. Only the logits come
 * back to the host.
 *
 * <p>Prompts run in chunks of up to {@link CudaKernels#BATCH} tokens: one pass over the weights per chunk (the
 * gemv_batch kernels multiply each weight block with every token of the chunk), causal attention over the cache for
 * the chunk's queries, the output head for the chunk's last token only; each chunk size has its own graph. This is
 * not yet a tensor-core GEMM prefill.
 *
 * <p>A step with decode entries (one new token each) and anything else runs every token of the step as a row of
 * shared passes over the weights: row r carries its own token, position and KV slot ({@link CudaRowKernels}), the
 * Q4_0/Q8_0 GEMVs run on int8 tensor cores with each weight block read once for the whole pass, and each row count
 * has its own graph. Up to {@link #DECODE_ROWS} rows per pass, so 64 running sequences decode in one weight read and a
 * prompt chunk joining them rides along in the same passes. A step of a lone decode token takes the single-token
 * graph; a step of prompts only runs them one by one in chunks as above. A row's results do not depend on the other
 * rows of its pass (each row's sums run in the same order whatever its neighbours), so a sequence gets the same
 * logits in any batch that runs as rows.
 *
 * <p>A model loaded from layer {@code first > 0} ({@code --gpu-layers}: the GPU's share of a model split with the CPU)
 * holds only layers {@code [first, n)}, their KV cache, the output norm and head; it does no embedding lookup and is
 * stepped through {@link #stepFromHidden} with the residual stream entering layer {@code first} already in device
 * memory (see {@link HybridInferenceModel}).
 *
 * <p>Prompts of {@link #GEMM_MIN_TOKENS} tokens or more (and every prompt of a model with Q4_K/Q6_K matrices, which
 * the chunk GEMVs do not read) run instead through the tensor-core prefill ({@link CudaPrefill}): chunks of up to
 * {@link #PREFILL_CHUNK} tokens, f16 activation rows, a GEMM per matrix (weights dequantized to f16 tile by tile,
 * mma.sync), RoPE and the cache write of the whole chunk, and a causal attention of the chunk's queries over the
 * cache; the head again for the last token only.
 *
 * <p>Not thread-safe (one engine thread drives it, as {@link InferenceModel} says).
 */
public final class CudaInferenceModel implements InferenceModel {

    /**
     * {@code -Daether.cuda.chunkedPrompt=false} runs prompts token by token through the decode graph instead of in
     * chunks (a fallback and a baseline for the chunked path).
     */
    static final boolean CHUNKED_PROMPT = Boolean.parseBoolean(System.getProperty("aether.cuda.chunkedPrompt", "true"));

    /**
     * Prompt entries of at least this many tokens go through the tensor-core GEMM prefill ({@code
     * -Daether.cuda.gemmMinTokens}; 0 turns the GEMM path off except where the chunk GEMVs cannot run the model).
     * 32: below it the GEMM's smallest tile (32 tokens) would mostly multiply padding; not yet measured against the
     * 8-token chunk GEMVs on a GPU.
     */
    static final int GEMM_MIN_TOKENS = Integer.getInteger("aether.cuda.gemmMinTokens", 32);

    /** Most tokens of one GEMM prefill chunk ({@code -Daether.cuda.prefillChunk}); sizes its activation buffers. */
    static final int PREFILL_CHUNK = Integer.getInteger("aether.cuda.prefillChunk", 512);

    /** Positions per accounted KV block (for {@link #kvStats()}; the cache itself is contiguous per slot). */
    public static final int BLOCK_POSITIONS = 16;

    private final CudaContext cuda;
    private final CudaKernels k;
    private final CudaPrefill p;
    private final ModelConfig config;
    private final int contextSize;
    private final int slots;
    private final Runnable onClose;
    private final List<Runnable> frees = new ArrayList<>();
    private final boolean[] slotUsed;
    private final long weightBytes;
    /** The first layer this model holds (0 unless it is the GPU part of a split model). */
    private final int firstLayer;
    private final long kvCacheBytes;
    /** Device bytes of every weight uploaded (matrices and vectors). */
    private long residentWeightBytes;

    // weights
    private final GpuMatrix tokenEmbedding;
    private final Layer[] layers;
    private final CUdeviceptr outputNorm;
    private final GpuMatrix output;
    private final CUdeviceptr ropeFactors;
    // activations and state
    private final AttentionShape shape;
    private final AttentionScratch scratch;
    private final CUdeviceptr params;
    private final CUdeviceptr x;
    private final CUdeviceptr h;
    private final QuantizedVector hq;
    private final CUdeviceptr qkv;
    private final CUdeviceptr attn;
    private final QuantizedVector attnQ;
    private final CUdeviceptr gateUp;
    private final CUdeviceptr act;
    private final QuantizedVector actQ;
    private final CUdeviceptr logits;
    private final CUdeviceptr best;
    private final int[] hostBest = new int[1];
    private final float kqScale;
    private final float[] hostLogits;
    private final int[] hostParams = new int[CudaKernels.PARAM_WORDS];
    // the GEMM prefill's chunk rows (prefillRows of them): residual stream, f16 GEMM inputs (normed rows, attention
    // output, SwiGLU output in turn), f32 GEMM outputs (qkv, then gate|up), token ids
    private final int prefillRows;
    private final boolean chunkGemvs;
    /**
     * Whether the GEMM prefill may run this model: false when a BF16 matrix holds a value beyond f16's range, which the
     * GEMM's f16 weight tiles cannot carry ({@link CudaPrefill#fitsHalfTiles}); its prompts then take the chunk GEMVs
     * (or token by token where those cannot run it).
     */
    private final boolean gemmTiles;
    private final CUdeviceptr px;
    private final CUdeviceptr pa16;
    private final CUdeviceptr pwide;
    private final CUdeviceptr ptokens;
    private final java.util.Map<Integer, CudaContext.Graph> prefillGraphs = new java.util.HashMap<>();
    private final java.util.Set<Integer> prefillValidated = new java.util.HashSet<>();

    /** Buffers and graphs of the batched decode; null when off (one slot, or a matrix type the row GEMV lacks). */
    private final DecodeRows rows;
    /** Per row of a rows pass: the batch index of the entry whose last token it is, else -1. */
    private final int[] rowEntry;
    /** Per row of a pass: whether its logits are downloaded (runRowPass). */
    private final boolean[] rowCopy;
    /** Batched-decode graphs by row count. */
    private final java.util.Map<Integer, CudaContext.Graph> rowGraphs = new java.util.HashMap<>();
    private final java.util.Set<Integer> rowsValidated = new java.util.HashSet<>();

    private CudaContext.Graph decodeGraph;
    /** Which kernels of the single-token step run inside the GEMV before them ({@link DecodeFusions}). */
    private DecodeFusions fusions = DecodeFusions.fromSystemProperties();
    /** Arrival counters of the fused GEMVs, one set per kind (norm, SwiGLU, RoPE), zeroed at allocation. */
    private final FusionCounters normCounters;
    private final FusionCounters swigluCounters;
    private final FusionCounters ropeCounters;
    /** Prompt-chunk graphs by (tokens, with the output head). */
    private final java.util.Map<Integer, CudaContext.Graph> chunkGraphs = new java.util.HashMap<>();
    private final java.util.Set<Integer> chunksValidated = new java.util.HashSet<>();
    private boolean validated;
    /** Kernel profiles by pass kind ("decode", "rows 64"), while {@link #PROFILE_PASSES} is on. */
    private final java.util.Map<String, KernelProfile> profiles = new java.util.LinkedHashMap<>();
    /** Passes run so far by kind, while {@link #PROFILE_PASSES} is on. */
    private final java.util.Map<String, Integer> passCounts = new java.util.HashMap<>();
    private boolean closed;

    private record Layer(CUdeviceptr attnNorm, GpuMatrix qkv, GpuMatrix wo, CUdeviceptr ffnNorm, GpuMatrix gateUp,
            GpuMatrix down, CUdeviceptr kCache, CUdeviceptr vCache) {}

    /**
     * Uploads the model in {@code file} to {@code cuda}'s device.
     *
     * @param contextSize positions per sequence (at most the model's context length)
     * @param slots       sequences that can hold KV memory at once
     * @param onClose     run once by {@link #close()} (e.g. closing the file)
     * @throws ModelLoadException when the architecture, a tensor type or a shape is not one this engine runs, or the
     *                            device has too little memory
     */
    public static CudaInferenceModel load(CudaContext cuda, GgufFile file, int contextSize, int slots,
            Runnable onClose) {
        return new CudaInferenceModel(cuda, file, ModelConfig.read(file), 0, contextSize, slots, onClose);
    }

    /**
     * Uploads layers {@code [firstLayer, n)} of the model, the output norm and head (and the token embeddings only when
     * they are also the head); the model is then stepped with {@link #stepFromHidden}.
     *
     * @throws IllegalArgumentException when {@code firstLayer} is not in {@code [0, n)}
     */
    public static CudaInferenceModel loadLayers(CudaContext cuda, GgufFile file, int firstLayer, int contextSize,
            int slots, Runnable onClose) {
        ModelConfig c = ModelConfig.read(file);
        if (firstLayer < 0 || firstLayer >= c.blockCount()) {
            throw new IllegalArgumentException("first GPU layer " + firstLayer + " (expected 0.." + (c.blockCount() - 1)
                    + " for a model of " + c.blockCount() + " layers)");
        }
        return new CudaInferenceModel(cuda, file, c, firstLayer, contextSize, slots, onClose);
    }

    private CudaInferenceModel(CudaContext cuda, GgufFile file, ModelConfig c, int firstLayer, int contextSize,
            int slots, Runnable onClose) {
        this.cuda = cuda;
        this.firstLayer = firstLayer;
        this.k = new CudaKernels(cuda);
        this.p = new CudaPrefill(k);
        this.config = c;
        this.onClose = Objects.requireNonNull(onClose, "onClose");
        checkSupported(file, c);
        if (contextSize < 1 || contextSize > c.contextLength()) {
            throw new IllegalArgumentException("context size " + contextSize + " (expected 1.." + c.contextLength()
                    + ", the model's context length)");
        }
        if (slots < 1) {
            throw new IllegalArgumentException("sequence slots " + slots + " (expected 1+)");
        }
        this.contextSize = contextSize;
        this.slots = slots;
        this.slotUsed = new boolean[slots];
        int dim = c.embeddingLength(), ffn = c.feedForwardLength(), qw = c.queryWidth();
        int layerCount = c.blockCount() - firstLayer;
        long kvBytes = 2L * layerCount * slots * c.headCountKv() * (long) contextSize * c.headDim() * 2;
        this.kvCacheBytes = kvBytes;
        this.prefillRows = Math.max(1, Math.min(PREFILL_CHUNK, contextSize));
        int qkvWidth = qw + 2 * c.keyWidth();
        long prefillBytes = prefillRows * (dim * 4L + Math.max(Math.max(dim, qw), ffn) * 2L
                + Math.max(qkvWidth, 2L * ffn) * 4L + 4L);
        long needed = weightBytes(file, firstLayer) + kvBytes + prefillBytes + (64L << 20);
        long free = cuda.freeMemory();
        if (needed > free) {
            throw new ModelLoadException(c.architecture(), "needs about " + (needed >> 20) + " MiB of GPU memory ("
                    + (kvBytes >> 20) + " MiB of it KV cache for " + slots + " x " + contextSize + " positions, "
                    + (prefillBytes >> 20) + " MiB prefill buffers for " + prefillRows + " tokens), "
                    + (free >> 20) + " MiB free on " + cuda.name() + " (lower --ctx)");
        }
        ModelWeights weights = new ModelWeights(file, c.architecture());
        try {
            long maxStaging = stagingBytes(file, c.blockCount());
            CUdeviceptr staging = cuda.alloc(maxStaging);
            try {
                // a model from a later layer needs the embeddings only as a tied head
                boolean tied = file.tensor("output.weight").isEmpty();
                this.tokenEmbedding = firstLayer == 0 || tied
                        ? matrix(file, staging, c.vocabSize(), dim, "token_embd.weight") : null;
                this.layers = new Layer[layerCount];
                for (int il = firstLayer; il < c.blockCount(); il++) {
                    String b = "blk." + il + ".";
                    layers[il - firstLayer] = new Layer(
                            vector(weights, b + "attn_norm.weight", dim),
                            matrix(file, staging, qw + 2 * c.keyWidth(), dim, b + "attn_q.weight",
                                    b + "attn_k.weight", b + "attn_v.weight"),
                            matrix(file, staging, dim, qw, b + "attn_output.weight"),
                            vector(weights, b + "ffn_norm.weight", dim),
                            matrix(file, staging, 2 * ffn, dim, b + "ffn_gate.weight", b + "ffn_up.weight"),
                            matrix(file, staging, dim, ffn, b + "ffn_down.weight"),
                            buffer(kvBytes / layerCount / 2),
                            buffer(kvBytes / layerCount / 2));
                }
                this.outputNorm = vector(weights, "output_norm.weight", dim);
                this.output = file.tensor("output.weight").isPresent()
                        ? matrix(file, staging, c.vocabSize(), dim, "output.weight") : tokenEmbedding;
                if (output.type() == GgmlType.F32) {
                    throw new ModelLoadException(c.architecture(), "the output matrix is F32; the CUDA GEMV kernels "
                            + "read Q4_0, Q8_0, Q4_K, Q6_K, F16 and BF16");
                }
                this.ropeFactors = weights.optionalVector("rope_freqs.weight", c.ropeDimensions() / 2)
                        .map(this::floats).orElse(null);
            } finally {
                cuda.free(staging, maxStaging);
            }
            this.shape = new AttentionShape(c.headCount(), c.headCountKv(), c.headDim(), c.ropeDimensions(),
                    contextSize, (float) c.ropeFreqBase(), (float) c.ropeFreqScale(), false);
            this.scratch = AttentionScratch.allocate(cuda, shape);
            frees.add(() -> scratch.free(cuda, shape));
            k.prepareAttention(shape);
            this.params = buffer(CudaKernels.PARAM_WORDS * 4L);
            // activations: rows for a whole prompt chunk (a decode step uses row 0)
            int rows = CudaKernels.BATCH;
            this.x = buffer(rows * dim * 4L);
            this.h = buffer(rows * dim * 4L);
            this.hq = quantized(rows * dim);
            this.qkv = buffer(rows * (qw + 2L * c.keyWidth()) * 4);
            this.attn = buffer(rows * qw * 4L);
            this.attnQ = quantized(rows * qw);
            this.gateUp = buffer(rows * 2L * ffn * 4);
            this.act = buffer(rows * (long) ffn * 4L);
            this.actQ = quantized(rows * ffn);
            this.logits = buffer(c.vocabSize() * 4L);
            this.best = buffer(4);
            this.normCounters = counters(1);
            this.swigluCounters = counters(Math.max(1, ffn / 32));
            this.ropeCounters = counters(c.headCount() + 2 * c.headCountKv());
            this.kqScale = 1.0f / (float) Math.sqrt(c.headDim());
            this.hostLogits = new float[c.vocabSize()];
            this.px = buffer(prefillRows * dim * 4L);
            this.pa16 = buffer(prefillRows * Math.max(Math.max(dim, qw), ffn) * 2L);
            this.pwide = buffer(prefillRows * Math.max(qkvWidth, 2L * ffn) * 4L);
            this.ptokens = buffer(prefillRows * 4L);
            boolean gemvable = true;
            for (Layer l : layers) {
                for (GpuMatrix m : List.of(l.qkv(), l.wo(), l.gateUp(), l.down())) {
                    gemvable &= !GpuMatrix.isKQuant(m.type()) && !m.isStacked();
                }
            }
            this.chunkGemvs = gemvable;
            boolean tiles = true;
            for (Layer l : layers) {
                for (GpuMatrix m : List.of(l.qkv(), l.wo(), l.gateUp(), l.down())) {
                    tiles &= p.fitsHalfTiles(m);
                }
            }
            this.gemmTiles = tiles;
            if (!tiles) {
                System.err.println("aether cuda: prompts run without the tensor-core GEMM prefill (a BF16 weight of "
                        + "magnitude 65536 or more, beyond the f16 tiles the GEMM multiplies)");
            }
            long w = (firstLayer == 0 ? tokenEmbedding.bytes() / c.vocabSize() : 0)
                    + (output == tokenEmbedding ? output.bytes() : 0);
            for (Layer l : layers) {
                w += l.qkv().bytes() + l.wo().bytes() + l.gateUp().bytes() + l.down().bytes();
            }
            this.weightBytes = w + (output == tokenEmbedding ? 0 : output.bytes());
            this.rows = allocateRows(slots < 2 ? 1 : DECODE_ROWS);
            this.rowEntry = new int[this.rows == null ? 0 : this.rows.k().capacity()];
            this.rowCopy = new boolean[this.rowEntry.length];
            cuda.synchronize();
        } catch (RuntimeException e) {
            freeAll();
            throw e;
        }
    }

    /** Refuses what this engine does not run, naming it. */
    private static void checkSupported(GgufFile file, ModelConfig c) {
        if (!c.architecture().equals("llama")) {
            throw new ModelLoadException(c.architecture(), "the CUDA engine runs llama-architecture models only "
                    + "(this increment); use --device cpu");
        }
        for (TensorInfo t : file.tensors()) {
            if (t.name().endsWith(".bias")) {
                throw new ModelLoadException(c.architecture(), "tensor '" + t.name() + "': biases are not supported "
                        + "by the CUDA engine yet; use --device cpu");
            }
            if (t.rank() == 2 && !GpuMatrix.supports(t.type())) {
                throw new ModelLoadException(c.architecture(), "tensor '" + t.name() + "' is " + t.type()
                        + "; the CUDA engine reads Q4_0, Q8_0, Q4_K, Q6_K, F16, BF16 (and F32 embeddings); use --device cpu");
            }
        }
        int dim = c.embeddingLength();
        if (dim % 32 != 0 || c.feedForwardLength() % 32 != 0 || c.headDim() % 32 != 0 || c.headDim() > 1024
                || c.valueHeadDim() != c.headDim()) {
            throw new ModelLoadException(c.architecture(), "shape dim " + dim + ", ffn " + c.feedForwardLength()
                    + ", head " + c.headDim() + "/" + c.valueHeadDim() + ": the CUDA kernels need multiples of 32, "
                    + "a head size up to 1024 and equal key and value head sizes");
        }
    }

    /** Raw bytes of the largest quantized matrix the loader repacks at once (a tensor, or a stacked group). */
    private static long stagingBytes(GgufFile file, int layers) {
        long max = 1;
        for (TensorInfo t : file.tensors()) {
            if (GpuMatrix.repacked(t.type())) {
                max = Math.max(max, t.sizeBytes());
            }
        }
        for (int il = 0; il < layers; il++) {
            String b = "blk." + il + ".";
            max = Math.max(max, quantizedBytes(file, b + "attn_q.weight", b + "attn_k.weight", b + "attn_v.weight"));
            max = Math.max(max, quantizedBytes(file, b + "ffn_gate.weight", b + "ffn_up.weight"));
        }
        return max;
    }

    private static long quantizedBytes(GgufFile file, String... names) {
        long total = 0;
        for (String n : names) {
            TensorInfo t = file.tensor(n).orElse(null);
            if (t != null && GpuMatrix.repacked(t.type())) {
                total += t.sizeBytes();
            }
        }
        return total;
    }

    /** File bytes of the tensors a model from {@code firstLayer} uploads (all of them from layer 0). */
    private static long weightBytes(GgufFile file, int firstLayer) {
        boolean tied = file.tensor("output.weight").isEmpty();
        long total = 0;
        for (TensorInfo t : file.tensors()) {
            boolean skipped = firstLayer > 0 && (t.name().equals("token_embd.weight") ? !tied
                    : belowLayer(t.name(), firstLayer));
            total += skipped ? 0 : t.sizeBytes();
        }
        return total;
    }

    /** True for {@code blk.i.*} with {@code i < layer}. */
    private static boolean belowLayer(String name, int layer) {
        if (!name.startsWith("blk.")) {
            return false;
        }
        int dot = name.indexOf('.', 4);
        return dot > 4 && Integer.parseInt(name, 4, dot, 10) < layer;
    }

    private CUdeviceptr buffer(long bytes) {
        CUdeviceptr p = cuda.alloc(bytes);
        frees.add(() -> cuda.free(p, bytes));
        return p;
    }

    private FusionCounters counters(int words) {
        FusionCounters f = FusionCounters.allocate(cuda, words);
        frees.add(() -> f.free(cuda));
        return f;
    }

    private QuantizedVector quantized(int n) {
        QuantizedVector q = QuantizedVector.allocate(cuda, n);
        frees.add(() -> q.free(cuda));
        return q;
    }

    private CUdeviceptr floats(float[] v) {
        residentWeightBytes += v.length * 4L;
        CUdeviceptr p = buffer(v.length * 4L);
        cuda.upload(v, p);
        return p;
    }

    private CUdeviceptr vector(ModelWeights weights, String name, int length) {
        return floats(weights.vector(name, length));
    }

    /**
     * Rows stacked from the named tensors (each [rows_i][cols]), uploaded as one matrix when they have one type, else
     * as a {@link GpuMatrix#stacked} matrix of one part per tensor (a Q4_K_M file's Q6_K attn_v under Q4_K q and k).
     */
    private GpuMatrix matrix(GgufFile file, CUdeviceptr staging, int rows, int cols, String... names) {
        List<MemorySegment> parts = new ArrayList<>();
        List<TensorInfo> infos = new ArrayList<>();
        GgmlType type = null;
        boolean mixed = false;
        long total = 0;
        for (String name : names) {
            TensorInfo t = file.tensor(name).orElseThrow(() -> new ModelLoadException(config.architecture(),
                    "tensor '" + name + "' is missing from the model file (" + file.path().getFileName() + ")"));
            if (t.rank() != 2 || t.dim(0) != cols) {
                throw new ModelLoadException(config.architecture(), "tensor '" + name + "' has ne "
                        + java.util.Arrays.toString(t.shape()) + ", expected rows of " + cols);
            }
            mixed |= type != null && t.type() != type;
            type = t.type();
            total += t.dim(1);
            parts.add(file.tensorData(t));
            infos.add(t);
        }
        if (total != rows) {
            throw new ModelLoadException(config.architecture(), String.join(" + ", names) + " have " + total
                    + " rows, expected " + rows);
        }
        if (mixed) {
            List<GpuMatrix> uploaded = new ArrayList<>();
            for (int i = 0; i < infos.size(); i++) {
                TensorInfo t = infos.get(i);
                GpuMatrix part = GpuMatrix.upload(cuda, t.type(), (int) t.dim(1), cols, parts.get(i), staging);
                frees.add(() -> part.free(cuda));
                uploaded.add(part);
            }
            try {
                return GpuMatrix.stacked(uploaded);
            } catch (IllegalArgumentException e) {
                throw new ModelLoadException(config.architecture(), "tensors " + String.join(", ", names) + ": "
                        + e.getMessage());
            }
        }
        GpuMatrix m = GpuMatrix.upload(cuda, type, rows, cols, parts, staging);
        frees.add(() -> m.free(cuda));
        residentWeightBytes += m.bytes();
        return m;
    }

    /** One token through every layer; with {@code head}, also the output norm, the logits and their argmax. */
    private void enqueueForward(boolean head) {
        ModelConfig c = config;
        int dim = c.embeddingLength();
        float eps = (float) c.rmsEps();
        // row 0 of the chunk-sized activations
        QuantizedVector hq1 = first(hq, dim), attnQ1 = first(attnQ, c.queryWidth()),
                actQ1 = first(actQ, c.feedForwardLength());
        if (firstLayer == 0) {   // a later part finds its input rows in x (stepFromHidden)
            k.getRow(tokenEmbedding, params, x);
        }
        // fused: the small kernel after a GEMV runs in that GEMV's last blocks (DecodeFusions); the residual GEMVs
        // (wo, down) then also leave the next RMSNorm done, in h and hq
        DecodeFusions f = fusions;
        boolean normed = false;
        for (int i = 0; i < layers.length; i++) {
            Layer l = layers[i];
            if (!normed) {
                k.rmsNorm(x, l.attnNorm(), h, hq1, dim, eps);
            }
            if (f.rope() && CudaKernels.fusable(l.qkv()) && CudaKernels.ropeFusable(shape)) {
                k.gemvRope(l.qkv(), h, hq1, qkv, ropeCounters, shape, l.kCache(), l.vCache(), params, ropeFactors);
            } else {
                k.gemv(l.qkv(), h, hq1, null, qkv);
                k.ropeKv(shape, qkv, l.kCache(), l.vCache(), params, ropeFactors);
            }
            k.attention(shape, qkv, l.kCache(), l.vCache(), params, scratch, kqScale, attn, attnQ1);
            if (f.norm() && CudaKernels.fusable(l.wo())) {
                k.gemvNorm(l.wo(), attn, attnQ1, x, x, normCounters, l.ffnNorm(), h, hq1, eps);
            } else {
                k.gemv(l.wo(), attn, attnQ1, x, x);
                k.rmsNorm(x, l.ffnNorm(), h, hq1, dim, eps);
            }
            if (f.swiglu() && f.swigluRows() && k.swigluRowsFusable(l.gateUp())) {
                k.gemvSwigluRows(l.gateUp(), hq1, gateUp, act, actQ1);
            } else if (f.swiglu() && CudaKernels.fusable(l.gateUp())) {
                k.gemvSwiglu(l.gateUp(), h, hq1, gateUp, swigluCounters, act, actQ1);
            } else {
                k.gemv(l.gateUp(), h, hq1, null, gateUp);
                k.swiglu(gateUp, act, actQ1, c.feedForwardLength());
            }
            CUdeviceptr nextNorm = i + 1 < layers.length ? layers[i + 1].attnNorm() : head ? outputNorm : null;
            normed = nextNorm != null && f.norm() && CudaKernels.fusable(l.down());
            if (normed) {
                k.gemvNorm(l.down(), act, actQ1, x, x, normCounters, nextNorm, h, hq1, eps);
            } else {
                k.gemv(l.down(), act, actQ1, x, x);
            }
        }
        if (head) {
            if (!normed) {
                k.rmsNorm(x, outputNorm, h, hq1, dim, eps);
            }
            k.gemv(output, h, hq1, null, logits);
            k.argmaxRows(logits, 1, c.vocabSize(), best);
        }
    }

    /**
     * Switches the single-token step's fusions (tests compare a model's greedy decode with them on and off); the step's
     * graph is captured again at the next token.
     */
    void useFusions(DecodeFusions f) {
        checkOpen();
        fusions = Objects.requireNonNull(f, "fusions");
        dropDecodeGraph();
    }

    /** Closes the captured single-token graph, so the next step captures it again with the launches now chosen. */
    private void dropDecodeGraph() {
        if (decodeGraph != null) {
            decodeGraph.close();
            decodeGraph = null;
        }
    }

    /** The single-token step's fusions in use. */
    public DecodeFusions fusions() {
        return fusions;
    }

    /** The first {@code n} elements of a quantized vector. */
    private static QuantizedVector first(QuantizedVector q, int n) {
        return new QuantizedVector(n, q.quants(), q.scales());
    }

    /**
     * A prompt chunk of {@code n} tokens through every layer; with {@code head}, the output norm, logits and argmax of
     * its last token.
     */
    private void enqueueChunk(int n, boolean head) {
        ModelConfig c = config;
        int dim = c.embeddingLength(), ffn = c.feedForwardLength();
        float eps = (float) c.rmsEps();
        int qkvWidth = c.queryWidth() + 2 * c.keyWidth();
        if (firstLayer == 0) {
            k.getRows(tokenEmbedding, CudaKernels.chunkTokens(params), x, n);
        }
        for (Layer l : layers) {
            k.rmsNorm(x, l.attnNorm(), h, hq, dim, eps, n);
            k.gemvBatch(l.qkv(), h, hq, null, qkv, n);
            k.ropeKv(shape, qkv, l.kCache(), l.vCache(), params, ropeFactors, n);
            k.attention(shape, qkv, qkvWidth, l.kCache(), l.vCache(), params, scratch, kqScale, attn, attnQ, n);
            k.gemvBatch(l.wo(), attn, attnQ, x, x, n);
            k.rmsNorm(x, l.ffnNorm(), h, hq, dim, eps, n);
            k.gemvBatch(l.gateUp(), h, hq, null, gateUp, n);
            k.swiglu(gateUp, act, actQ, ffn, n);
            k.gemvBatch(l.down(), act, actQ, x, x, n);
        }
        if (head) {
            long last = n - 1;
            CUdeviceptr xLast = x.withByteOffset(last * dim * 4), hLast = h.withByteOffset(last * dim * 4);
            QuantizedVector hqLast = new QuantizedVector(dim, hq.quants().withByteOffset(last * dim),
                    hq.scales().withByteOffset(last * dim / 32 * 8));
            k.rmsNorm(xLast, outputNorm, hLast, hqLast, dim, eps);
            k.gemv(output, hLast, hqLast, null, logits);
            k.argmaxRows(logits, 1, c.vocabSize(), best);
        }
    }

    /** Runs tokens[from, from + n) at positions pos.. of {@code slot} as one chunk (eager and checked the first time). */
    private void runChunk(int[] tokens, int from, int n, int pos, int slot, boolean head) {
        hostParams[CudaKernels.PARAM_TOKEN] = tokens[from + n - 1];
        hostParams[CudaKernels.PARAM_POS] = pos;
        hostParams[CudaKernels.PARAM_SLOT] = slot;
        System.arraycopy(tokens, from, hostParams, CudaKernels.PARAM_CHUNK, n);
        cuda.uploadAsync(hostParams, params);
        int key = 2 * n + (head ? 1 : 0);
        if (chunksValidated.add(key)) {
            enqueueChunk(n, head);
            cuda.checkErrors("the first prompt chunk of " + n + " tokens (eager)");
            return;
        }
        chunkGraphs.computeIfAbsent(key, kk -> cuda.capture(() -> enqueueChunk(n, head))).launch();
    }

    /**
     * A prompt chunk of {@code n} (up to {@link #prefillRows}) tokens through every layer on the tensor-core GEMM
     * path; with {@code head}, the output norm, logits and argmax of its last token (the decode kernels, row 0 of
     * the decode activations).
     */
    /**
     * The GEMM prefill's kernels, launched without programmatic dependent launch: with it the 8b Q4_0 pp512 fell from
     * 8,682 to 7,890 t/s on an H100 (2026-12-07), while decode gained (414 to 425 t/s).
     */
    private void enqueuePrefill(int n, boolean head) {
        cuda.withoutProgrammaticLaunch(() -> enqueuePrefillKernels(n, head));
    }

    private void enqueuePrefillKernels(int n, boolean head) {
        ModelConfig c = config;
        int dim = c.embeddingLength(), ffn = c.feedForwardLength();
        float eps = (float) c.rmsEps();
        int qkvWidth = c.queryWidth() + 2 * c.keyWidth();
        if (firstLayer == 0) {   // a later part of a split model finds its input rows in px (runEntry)
            p.getRows(tokenEmbedding, ptokens, px, n);
        }
        for (Layer l : layers) {
            p.rmsNormHalf(px, l.attnNorm(), pa16, dim, eps, n);
            p.gemm(l.qkv(), pa16, null, pwide, n);
            p.ropeKv(shape, pwide, l.kCache(), l.vCache(), params, ropeFactors, n);
            p.attention(shape, pwide, qkvWidth, l.kCache(), l.vCache(), params, kqScale, pa16, n);
            p.gemm(l.wo(), pa16, px, px, n);
            p.rmsNormHalf(px, l.ffnNorm(), pa16, dim, eps, n);
            p.gemm(l.gateUp(), pa16, null, pwide, n);
            p.swigluHalf(pwide, pa16, ffn, n);
            p.gemm(l.down(), pa16, px, px, n);
        }
        if (head) {
            CUdeviceptr xLast = px.withByteOffset((long) (n - 1) * dim * 4);
            QuantizedVector hq1 = first(hq, dim);
            k.rmsNorm(xLast, outputNorm, h, hq1, dim, eps);
            k.gemv(output, h, hq1, null, logits);
            k.argmaxRows(logits, 1, c.vocabSize(), best);
        }
    }

    /** Most distinct (tokens, head) prefill graphs kept; other chunk sizes run eagerly. */
    private static final int PREFILL_GRAPHS = 8;

    /**
     * Runs tokens[from, from + n) at positions pos.. of {@code slot} through the GEMM prefill: eager and checked the
     * first time for a chunk size, then a graph per size (a few sizes; the rest eager: a chunk's GPU time dwarfs its
     * launches).
     */
    private void runPrefill(int[] tokens, int from, int n, int pos, int slot, boolean head) {
        hostParams[CudaKernels.PARAM_TOKEN] = tokens[from + n - 1];
        hostParams[CudaKernels.PARAM_POS] = pos;
        hostParams[CudaKernels.PARAM_SLOT] = slot;
        cuda.uploadAsync(hostParams, params);
        cuda.uploadAsync(java.util.Arrays.copyOfRange(tokens, from, from + n), ptokens);
        int key = 2 * n + (head ? 1 : 0);
        if (prefillValidated.add(key)) {
            enqueuePrefill(n, head);
            cuda.checkErrors("the first GEMM prefill chunk of " + n + " tokens (eager)");
            // captured now (nothing runs), so that the capture's cost falls on this first chunk, not on a later one
            if (prefillGraphs.size() < PREFILL_GRAPHS) {
                prefillGraphs.put(key, cuda.capture(() -> enqueuePrefill(n, head)));
            }
            return;
        }
        CudaContext.Graph g = prefillGraphs.get(key);
        if (g != null) {
            g.launch();
        } else {
            enqueuePrefill(n, head);
        }
    }

    /** How a prompt of {@code length} tokens runs, for reports. */
    public String promptPath(int length) {
        if (gemmPrefill(length)) {
            return "a " + length + "-token prompt runs through the tensor-core GEMM prefill in chunks of up to "
                    + prefillRows + " tokens";
        }
        if (length > 1 && CHUNKED_PROMPT && chunkGemvs) {
            return "a " + length + "-token prompt runs in chunks of " + CudaKernels.BATCH + " tokens through the chunk "
                    + "GEMVs (one weight pass per chunk)";
        }
        return "a " + length + "-token prompt runs token by token";
    }

    /** Whether a prompt entry of {@code length} tokens goes through the GEMM prefill. */
    private boolean gemmPrefill(int length) {
        if (length < 2 || !gemmTiles) {
            return false;
        }
        return chunkGemvs ? GEMM_MIN_TOKENS > 0 && length >= GEMM_MIN_TOKENS : CHUNKED_PROMPT;
    }

    /** Runs one token at {@code pos} of {@code slot}; the first run is eager and checked, later ones replay graphs. */
    private void runToken(int token, int pos, int slot) {
        hostParams[CudaKernels.PARAM_TOKEN] = token;
        hostParams[CudaKernels.PARAM_POS] = pos;
        hostParams[CudaKernels.PARAM_SLOT] = slot;
        cuda.uploadAsync(hostParams, params);
        if (!validated) {
            enqueueForward(true);
            cuda.checkErrors("the first forward pass of " + config.architecture() + " (eager)");
            validated = true;
            return;
        }
        if (profiling("decode")) {
            return;
        }
        if (decodeGraph == null) {
            decodeGraph = cuda.capture(() -> enqueueForward(true));
        }
        decodeGraph.launch();
    }

    /**
     * {@code -Daether.cuda.profile=N}: after {@link #PROFILE_WARMUP} passes of a kind (single-token decode, a row
     * pass of n rows), its next N passes run eagerly with every kernel timed ({@link KernelProfile}) instead of
     * replaying the graph; the tables go to stderr when the model closes. For finding where a step's time goes on a
     * GPU machine that has no profiler; the profiled passes compute the same results.
     */
    static final int PROFILE_PASSES = Integer.getInteger("aether.cuda.profile", 0);
    private static final int PROFILE_WARMUP = 10;

    /** Runs this pass eagerly and timed when it is one of the profiled passes of {@code kind}; true when it did. */
    private boolean profiling(String kind) {
        if (PROFILE_PASSES <= 0) {
            return false;
        }
        int seen = passCounts.merge(kind, 1, Integer::sum);
        if (seen <= PROFILE_WARMUP || seen > PROFILE_WARMUP + PROFILE_PASSES) {
            return false;
        }
        KernelProfile p = profiles.computeIfAbsent(kind, k -> cuda.newProfile());
        cuda.profiled(p, kind.equals("decode") ? () -> enqueueForward(true) : () -> enqueueRows(
                Integer.parseInt(kind.substring("rows ".length()))));
        return true;
    }

    /** The kernel tables of the profiled passes so far (empty unless {@link #PROFILE_PASSES} is on). */
    public String profileReport() {
        StringBuilder s = new StringBuilder();
        profiles.forEach((kind, p) -> s.append(p.table(cuda.name() + ", " + config.architecture() + " " + kind)));
        hostTimes.forEach((kind, t) -> s.append(String.format("host, %s: %.0f passes, %.2f ms from enqueue to the "
                + "GPU's end, %.2f ms logits download and copy per pass%n", kind, t[0], t[1] / t[0], t[2] / t[0])));
        return s.toString();
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public int contextSize() {
        return contextSize;
    }

    /** The GPU's name, for reports. */
    public String deviceName() {
        return cuda.name();
    }

    /** Weight bytes one decode step reads (every matrix, one embedding row, the output head). */
    public long weightBytesPerToken() {
        return weightBytes;
    }

    /** Device-to-device copy bandwidth of this GPU, GB/s of bytes read plus written (a 1 GiB copy, median). */
    public double copyBandwidthGBs(long bytes) {
        return CudaBench.copyBandwidth(cuda, bytes, 15);
    }

    /**
     * The device argmax ({@code argmax_rows}) of the last single-sequence pass's logits (a decode token, or a prompt's
     * last chunk): the first largest, or -1 when they hold NaN, +Infinity or only -Infinity. Rows passes keep one per
     * row instead (runRowPass).
     */
    public int lastArgmax() {
        cuda.download(best, hostBest);
        return hostBest[0];
    }

    @Override
    public Sequence newSequence() {
        checkOpen();
        return new GpuSequence();
    }

    /** Last-token logits only (see {@link #step(List, Output, float[])}); the server refuses the rest up front. */
    @Override
    public boolean computes(Output output) {
        return output == Output.LAST_LOGITS;
    }

    /**
     * Only {@link Output#LAST_LOGITS} runs on the GPU in this increment: per-token logits (prompt scoring) and hidden
     * states (embeddings) need step graphs this engine does not build yet, so they are refused with the CPU as the way out.
     */
    @Override
    public void step(List<BatchEntry> batch, Output output, float[] out) {
        if (output != Output.LAST_LOGITS) {
            throw new UnsupportedOperationException("the CUDA engine computes last-token logits only; " + output
                    + " (prompt scoring, embeddings) needs --device cpu");
        }
        step(batch, out);
    }

    @Override
    public void step(List<BatchEntry> batch, float[] logitsOut) {
        if (firstLayer > 0) {
            throw new IllegalArgumentException("this CUDA model holds layers " + firstLayer + ".." + (config.blockCount()
                    - 1) + " only: step it with the residual stream of the layers before (stepFromHidden)");
        }
        run(batch, null, logitsOut, null, null, null, null);
    }

    /**
     * The argmax of every row a pass computes is taken on the GPU ({@code argmax_rows}); an entry whose logits are not
     * wanted downloads one int instead of its row. A row the kernel flags (NaN, +Infinity, all -Infinity) is
     * downloaded after all and {@link Argmax#first} reports it, so the errors are the host path's.
     */
    @Override
    public void step(List<BatchEntry> batch, float[] logitsOut, boolean[] logitsWanted, int[] argmaxOut) {
        if (firstLayer > 0) {
            throw new IllegalArgumentException("this CUDA model holds layers " + firstLayer + ".." + (config.blockCount()
                    - 1) + " only: step it with the residual stream of the layers before (stepFromHidden)");
        }
        InferenceModel.checkArgmaxArrays(batch, logitsWanted, argmaxOut);
        run(batch, null, logitsOut, kindsOf(batch.size(), logitsWanted), argmaxOut, null, null);
        reportFlagged(batch.size(), config.vocabSize(), logitsOut, logitsWanted, argmaxOut);
    }

    /**
     * {@code CANDIDATES} entries get their candidates from the {@code sample_candidates} kernel (the default); with
     * {@code -Daether.cuda.deviceSampling=false} they download their logits rows and the host computes the candidates
     * ({@link Candidates#computeOnHost}). On since the H100 run of 2026-12-07 (fifth session): its GPU tests passed
     * (the same tokens both ways for the same seeds) and 64 streams of sampled requests (temperature 0.8, top-k 40)
     * served 5,412 tokens/s with it against 2,894 without (8B Q4_0, one card, one session); the GPU tests compare both
     * ways ({@link #deviceSampling(boolean)} per model), and the switch is the A/B of the serving measurements. Off,
     * it also turns off the device's draw over the whole vocabulary (the host computes the same draw from the
     * downloaded row).
     */
    static final boolean DEVICE_SAMPLING = Boolean.parseBoolean(System.getProperty("aether.cuda.deviceSampling", "true"));
    private boolean deviceSampling = DEVICE_SAMPLING;

    /** Turns the device's candidate selection on or off for this model's later steps (see {@link #DEVICE_SAMPLING}). */
    public void deviceSampling(boolean on) {
        deviceSampling = on;
    }

    /** True while the device selects sampling candidates ({@link #DEVICE_SAMPLING}, {@link #deviceSampling}). */
    @Override
    public boolean samplesCandidates() {
        return deviceSampling;
    }

    /**
     * Sampling candidates on the GPU ({@code sample_candidates}, after the head of the pass that computed the row): a
     * {@code CANDIDATES} entry downloads {@link Candidates#DEVICE_WORDS} words instead of its logits, and its raw logits
     * row as well only when its request says the candidates do not decide the token (which stays on the host path:
     * top-p whose cut lies past the candidates, min-p without top-k/top-p keeping more, a flagged row, a draw over the
     * whole vocabulary whose target lies within rounding distance of a cumulative boundary; see {@link
     * aether.llm.sampling.Sampler#candidatesDecide}). A request with a {@link CandidateRequest#drawUniform} (a
     * temperature and no filter: the OpenAI default) gets the kernel's draw over the whole adjusted row with it, so
     * its row stays on the device too. {@code ARGMAX} entries as {@link #step(List, float[], boolean[], int[])}.
     */
    @Override
    public void step(List<BatchEntry> batch, float[] logitsOut, RowKind[] kinds, int[] argmaxOut,
            CandidateRequest[] requests, Candidates candidates) {
        if (firstLayer > 0) {
            throw new IllegalArgumentException("this CUDA model holds layers " + firstLayer + ".." + (config.blockCount()
                    - 1) + " only: step it with the residual stream of the layers before (stepFromHidden)");
        }
        InferenceModel.checkRowKinds(batch, kinds, argmaxOut, requests, candidates);
        int vocab = config.vocabSize();
        if (!deviceSampling) {
            RowKind[] hostKinds = scratchKinds(batch.size());
            for (int i = 0; i < batch.size(); i++) {
                hostKinds[i] = kinds[i] == RowKind.CANDIDATES ? RowKind.LOGITS : kinds[i];
            }
            run(batch, null, logitsOut, hostKinds, argmaxOut, null, null);
            reportFlagged(batch.size(), vocab, logitsOut, hostKinds, argmaxOut);
            for (int i = 0; i < batch.size(); i++) {
                if (kinds[i] == RowKind.CANDIDATES) {
                    CandidateRequest r = requests[i];   // the sum too, as the device computes it (the GPU tests compare)
                    candidates.computeOnHost(logitsOut, i * vocab, vocab, r.adjustments(), i, true, r.drawUniform(),
                            r.drawInverseTemperature());
                }
            }
            return;
        }
        run(batch, null, logitsOut, kinds, argmaxOut, requests, candidates);
        reportFlagged(batch.size(), vocab, logitsOut, kinds, argmaxOut);
    }

    private RowKind[] stepKinds = new RowKind[0];

    private RowKind[] scratchKinds(int n) {
        if (stepKinds.length < n) {
            stepKinds = new RowKind[n];
        }
        return stepKinds;
    }

    /** The kinds of an argmax step: LOGITS where wanted, else ARGMAX; null (every entry's logits) without wanted. */
    private RowKind[] kindsOf(int n, boolean[] wanted) {
        if (wanted == null) {
            return null;
        }
        RowKind[] kinds = scratchKinds(n);
        for (int i = 0; i < n; i++) {
            kinds[i] = wanted[i] ? RowKind.LOGITS : RowKind.ARGMAX;
        }
        return kinds;
    }

    /** {@link #reportFlagged(int, int, float[], boolean[], int[])} for the ARGMAX entries of {@code kinds}. */
    private static void reportFlagged(int entries, int vocab, float[] logits, RowKind[] kinds, int[] argmaxOut) {
        for (int i = 0; i < entries; i++) {
            if (kinds[i] == RowKind.ARGMAX && argmaxOut[i] < 0) {
                argmaxOut[i] = Argmax.first(logits, i * vocab, vocab);
            }
        }
    }

    /**
     * After a step of {@link #stepFromHidden(List, CUdeviceptr, float[], boolean[], int[])}: each entry the device
     * flagged (argmax -1: NaN, +Infinity or only -Infinity among its logits, which it then copied out) gets {@link
     * Argmax#first} of its logits, which throws the host path's error naming the token.
     */
    static void reportFlagged(int entries, int vocab, float[] logits, boolean[] logitsWanted, int[] argmaxOut) {
        for (int i = 0; i < entries; i++) {
            if (!logitsWanted[i] && argmaxOut[i] < 0) {
                argmaxOut[i] = Argmax.first(logits, i * vocab, vocab);
            }
        }
    }

    /**
     * A step of a model loaded from a later layer ({@link #loadLayers}): {@code hidden} is device memory holding the
     * residual stream entering layer {@link #firstLayer()}, one row of n_embd floats per new token in batch order
     * (entry 0's tokens first); each token's row is copied into the model's activations on its stream before the
     * token's (or chunk's) pass, instead of the embedding lookup. The token ids are checked and counted as in
     * {@link #step(List, float[])}. Writes the last-token logits per entry.
     *
     * @throws IllegalArgumentException as {@link #step(List, float[])}, or for a model from layer 0
     */
    public void stepFromHidden(List<BatchEntry> batch, CUdeviceptr hidden, float[] logitsOut) {
        if (firstLayer == 0) {
            throw new IllegalArgumentException("this CUDA model embeds its tokens (it holds every layer); use step");
        }
        run(batch, Objects.requireNonNull(hidden, "hidden"), logitsOut, null, null, null, null);
    }

    /**
     * {@link #stepFromHidden(List, CUdeviceptr, float[])} with argmax-only entries, as {@link #step(List, float[],
     * boolean[], int[])}, except that an entry the device flags (NaN, +Infinity, only -Infinity) is not reported here:
     * it gets argmax -1 and its logits in {@code logitsOut}, so that a split model can finish its step before {@link
     * #reportFlagged} raises the error.
     */
    public void stepFromHidden(List<BatchEntry> batch, CUdeviceptr hidden, float[] logitsOut, boolean[] logitsWanted,
            int[] argmaxOut) {
        if (firstLayer == 0) {
            throw new IllegalArgumentException("this CUDA model embeds its tokens (it holds every layer); use step");
        }
        InferenceModel.checkArgmaxArrays(batch, logitsWanted, argmaxOut);
        run(batch, Objects.requireNonNull(hidden, "hidden"), logitsOut, kindsOf(batch.size(), logitsWanted), argmaxOut,
                null, null);
    }

    /** The first layer this model holds: 0, or where the GPU's share of a split model starts. */
    public int firstLayer() {
        return firstLayer;
    }

    /** Device bytes of the weights uploaded (they stay until {@link #close()}). */
    public long residentWeightBytes() {
        return residentWeightBytes;
    }

    /** Device bytes of the KV cache (f16 keys and values of this model's layers, every slot, every position). */
    public long kvCacheBytes() {
        return kvCacheBytes;
    }

    /**
     * The device memory this model holds, for a memory manager's books ({@link DeviceMemoryRegistration}): the weights
     * (file-backed) and the KV cache; the few MiB of activation scratch are not listed.
     */
    public List<DeviceMemoryRegistration.Region> deviceRegions() {
        String layers = "layers " + firstLayer + ".." + (config.blockCount() - 1);
        return List.of(
                new DeviceMemoryRegistration.Region("weights of " + layers + " and the head", residentWeightBytes,
                        aether.runtime.protocol.BufferOrigin.WEIGHT),
                new DeviceMemoryRegistration.Region("f16 KV cache of " + layers, kvCacheBytes,
                        aether.runtime.protocol.BufferOrigin.ACTIVATION));
    }

    /**
     * A step; with {@code wanted} (else every entry's logits are), entry i's logits only where wanted[i], else its
     * device argmax in {@code argmaxOut[i]}, or -1 and its logits when the device flagged the row ({@link
     * #reportFlagged}).
     */
    private void run(List<BatchEntry> batch, CUdeviceptr hidden, float[] logitsOut, RowKind[] wanted,
            int[] argmaxOut, CandidateRequest[] requests, Candidates candidates) {
        checkOpen();
        int vocab = config.vocabSize();
        if (batch.isEmpty()) {
            throw new IllegalArgumentException("step of an empty batch");
        }
        if (logitsOut.length < (long) batch.size() * vocab) {
            throw new IllegalArgumentException("logits array of " + logitsOut.length + " floats for " + batch.size()
                    + " entries of vocab " + vocab + " (expected at least " + (long) batch.size() * vocab + ")");
        }
        var seen = new IdentityHashMap<Sequence, Boolean>();
        int newSlots = 0;
        for (BatchEntry e : batch) {
            if (!(e.sequence() instanceof GpuSequence s) || s.owner() != this) {
                throw new IllegalArgumentException("sequence not created by this model");
            }
            if (s.isClosed()) {
                throw new IllegalArgumentException("step on a closed sequence");
            }
            if (seen.put(s, Boolean.TRUE) != null) {
                throw new IllegalArgumentException("a sequence appears twice in one step");
            }
            for (int i = e.from(); i < e.to(); i++) {
                if (e.tokens()[i] < 0 || e.tokens()[i] >= vocab) {
                    throw new IllegalArgumentException("token id " + e.tokens()[i] + " at index " + i
                            + " (expected 0.." + (vocab - 1) + ")");
                }
            }
            if (s.length + e.length() > contextSize) {
                throw new KvCacheFullException("context full: a sequence of " + s.length + " positions cannot take "
                        + e.length() + " more (context size " + contextSize + ")");
            }
            if (s.slot < 0) {
                newSlots++;
            }
        }
        int freeSlots = 0;
        for (boolean used : slotUsed) {
            freeSlots += used ? 0 : 1;
        }
        if (newSlots > freeSlots) {
            throw new KvCacheFullException("KV cache full: " + newSlots + " more sequences need a slot, " + freeSlots
                    + " of " + slots + " free");
        }
        int decodeEntries = 0;
        for (BatchEntry e : batch) {
            decodeEntries += e.length() == 1 ? 1 : 0;
        }
        // decode entries with anything else: every token of the step as rows of shared passes (each row its own
        // sequence position and slot, so a prompt chunk rides along with the decode rows); otherwise entry by entry
        // (a prompt in chunks, a lone decode token through the single-token graph)
        boolean asRows = rows != null && decodeEntries >= 1 && batch.size() >= 2;
        long row = 0;   // the hidden input row of the entry's first token
        for (int i = 0; i < batch.size(); i++) {
            GpuSequence s = (GpuSequence) batch.get(i).sequence();
            if (s.slot < 0) {
                s.slot = takeSlot();
            }
            if (!asRows) {
                runEntry(batch.get(i), i, hidden, row, logitsOut, wanted, argmaxOut, requests, candidates);
            }
            row += batch.get(i).length();
        }
        if (asRows) {
            runAsRows(batch, hidden, logitsOut, wanted, argmaxOut, requests, candidates);
        }
    }

    /**
     * Runs one entry on its own (a prompt in chunks, or token by token) and copies its last logits to row i; with
     * {@code hidden} (a later part of a split model), its input rows start at row {@code row} of it.
     */
    private void runEntry(BatchEntry e, int i, CUdeviceptr hidden, long row, float[] logitsOut, RowKind[] wanted,
            int[] argmaxOut, CandidateRequest[] requests, Candidates candidates) {
        int vocab = config.vocabSize();
        long rowBytes = config.embeddingLength() * 4L;
        GpuSequence s = (GpuSequence) e.sequence();
        if (gemmPrefill(e.length())) {
            for (int t = e.from(); t < e.to(); t += prefillRows) {
                int n = Math.min(prefillRows, e.to() - t);
                if (hidden != null) {
                    cuda.copyAsync(hidden.withByteOffset((row + t - e.from()) * rowBytes), px, n * rowBytes);
                }
                runPrefill(e.tokens(), t, n, s.length, s.slot, t + n == e.to());
                s.length += n;
            }
        } else if (e.length() == 1 || !CHUNKED_PROMPT || !chunkGemvs) {
            for (int t = e.from(); t < e.to(); t++) {
                if (hidden != null) {
                    cuda.copyAsync(hidden.withByteOffset((row + t - e.from()) * rowBytes), x, rowBytes);
                }
                runToken(e.tokens()[t], s.length, s.slot);
                s.length++;
            }
        } else {
            for (int t = e.from(); t < e.to(); t += CudaKernels.BATCH) {
                int n = Math.min(CudaKernels.BATCH, e.to() - t);
                if (hidden != null) {
                    cuda.copyAsync(hidden.withByteOffset((row + t - e.from()) * rowBytes), x, n * rowBytes);
                }
                runChunk(e.tokens(), t, n, s.length, s.slot, t + n == e.to());
                s.length += n;
            }
        }
        if (wanted != null && wanted[i] == RowKind.CANDIDATES) {
            candidateRow[0] = 0;
            candidateEntry[0] = i;
            deviceCandidates(logits, 1, requests, candidates);   // waits for the stream
            if (requests[i].decides(candidates, i)) {
                return;
            }
        } else if (wanted != null && wanted[i] == RowKind.ARGMAX) {
            cuda.download(best, hostBest);  // the pass's argmax_rows of its last logits; waits for the stream
            if (hostBest[0] >= 0) {
                argmaxOut[i] = hostBest[0];
                return;
            }
            argmaxOut[i] = -1;   // flagged: its logits go out after all, and the caller names the culprit
        }
        cuda.download(logits, hostLogits);  // waits for the stream
        System.arraycopy(hostLogits, 0, logitsOut, i * vocab, vocab);
    }

    // ---- batched decode ---------------------------------------------------------------------------------------------

    /**
     * Most rows of one pass ({@code -Daether.cuda.decodeRows}, default 64; 1 turns the batched decode off). A step with
     * more tokens runs in several passes.
     */
    static final int DECODE_ROWS = Integer.getInteger("aether.cuda.decodeRows", 64);

    /** Device buffers of {@code k.capacity()} rows each, and the host side of the ids and logits. */
    private record DecodeRows(CudaRowKernels k, CUdeviceptr ids, CUdeviceptr x, CUdeviceptr h, QuantizedVector hq,
            CUdeviceptr qkv, CUdeviceptr attn, QuantizedVector attnQ, CUdeviceptr gateUp, CUdeviceptr act,
            QuantizedVector actQ, CUdeviceptr logits, AttentionScratch scratch, int[] hostIds,
            MemorySegment hostLogits, CUdeviceptr argmax, int[] hostArgmax) {}

    /**
     * The batched decode's buffers for {@code capacity} rows, or null when it is off (capacity 1: one sequence slot,
     * or -Daether.cuda.decodeRows=1) or cannot run here (said why on stderr).
     */
    private DecodeRows allocateRows(int capacity) {
        if (capacity < 2) {
            return null;
        }
        // the embedding table is only read row by row (any type the loader takes); every other matrix is multiplied
        List<GpuMatrix> multiplied = new ArrayList<>(List.of(output));
        for (Layer l : layers) {
            multiplied.addAll(List.of(l.qkv(), l.wo(), l.gateUp(), l.down()));
        }
        for (GpuMatrix m : multiplied) {
            if (!CudaRowKernels.supports(m.type()) || m.isStacked()) {
                System.err.println("aether cuda: decode entries run one by one (a " + m.type() + " matrix; the batched "
                        + "decode reads Q4_0, Q8_0, F16, BF16)");
                return null;
            }
        }
        ModelConfig c = config;
        int dim = c.embeddingLength(), ffn = c.feedForwardLength(), qw = c.queryWidth();
        // activations (floats, and int8 + a float2 per 32 where quantized), logits, attention scratch
        long perRow = 4L * (2 * dim + qw + 2L * c.keyWidth() + qw + 3L * ffn + c.vocabSize())
                + 5 * (dim + qw + (long) ffn) / 4 + 4L * shape.heads() * shape.splits() * (shape.headDim() + 2) + 12
                + CudaRowKernels.splitSumBytesPerRow();
        long free = cuda.freeMemory();
        if (perRow * capacity + (32L << 20) > free) {
            System.err.println("aether cuda: decode entries run one by one (the batched decode's " + capacity
                    + " rows need " + (perRow * capacity >> 20) + " MiB, " + (free >> 20) + " MiB free)");
            return null;
        }
        CudaRowKernels rk = new CudaRowKernels(cuda, capacity);
        frees.add(rk::free);
        rk.prepareAttention(shape);
        AttentionScratch rowScratch = CudaRowKernels.scratch(cuda, shape, capacity);
        frees.add(() -> rowScratch.free(cuda, shape));
        Arena arena = Arena.ofShared();
        frees.add(arena::close);
        MemorySegment hostLogits = arena.allocate((long) capacity * c.vocabSize() * 4, 64);
        cuda.pin(hostLogits);   // every pass downloads its rows' logits (8 MB for 64 rows of a 32k vocabulary)
        frees.add(() -> cuda.unpin(hostLogits));
        return new DecodeRows(rk, buffer(rk.idsWords() * 4L), buffer((long) capacity * dim * 4),
                buffer((long) capacity * dim * 4), quantized(capacity * dim),
                buffer((long) capacity * (qw + 2L * c.keyWidth()) * 4), buffer((long) capacity * qw * 4),
                quantized(capacity * qw), buffer((long) capacity * 2 * ffn * 4), buffer((long) capacity * ffn * 4),
                quantized(capacity * ffn), buffer((long) capacity * c.vocabSize() * 4), rowScratch,
                new int[rk.idsWords()], hostLogits, buffer(capacity * 4L), new int[capacity]);
    }

    /** {@code n} rows (a token of a sequence each, at its position and slot) through every layer and the head. */
    private void enqueueRows(int n) {
        DecodeRows b = rows;
        CudaRowKernels rk = b.k();
        ModelConfig c = config;
        int dim = c.embeddingLength(), ffn = c.feedForwardLength(), vocab = c.vocabSize();
        float eps = (float) c.rmsEps();
        int qkvWidth = c.queryWidth() + 2 * c.keyWidth();
        if (firstLayer == 0) {   // a later part of a split model finds its input rows in x (runRowPass copies them)
            rk.embed(tokenEmbedding, b.ids(), b.x(), n);
        }
        for (Layer l : layers) {
            rk.rmsNorm(b.x(), l.attnNorm(), b.h(), b.hq(), dim, eps, n);
            rk.gemv(l.qkv(), b.h(), b.hq(), null, b.qkv(), n);
            rk.ropeKv(shape, b.qkv(), l.kCache(), l.vCache(), b.ids(), ropeFactors, n);
            rk.attention(shape, b.qkv(), qkvWidth, l.kCache(), l.vCache(), b.ids(), b.scratch(), kqScale, b.attn(),
                    b.attnQ(), n);
            rk.gemv(l.wo(), b.attn(), b.attnQ(), b.x(), b.x(), n);
            rk.rmsNorm(b.x(), l.ffnNorm(), b.h(), b.hq(), dim, eps, n);
            rk.gemv(l.gateUp(), b.h(), b.hq(), null, b.gateUp(), n);
            rk.swiglu(b.gateUp(), b.act(), b.actQ(), ffn, n);
            rk.gemv(l.down(), b.act(), b.actQ(), b.x(), b.x(), n);
        }
        rk.rmsNorm(b.x(), outputNorm, b.h(), b.hq(), dim, eps, n);
        rk.gemv(output, b.h(), b.hq(), null, b.logits(), n);
        k.argmaxRows(b.logits(), n, vocab, b.argmax());   // greedy entries download these ints, not their rows
    }

    /**
     * Every token of {@code batch} as a row (token, position, slot), in batch order, in passes of up to the rows'
     * capacity; an entry's logits come from the row of its last token. A prompt's tokens may share a pass: the pass
     * stores every row's key and value (rope_kv_rows) before any row attends, and row p attends over positions 0..p of
     * its own slot only, so each token sees exactly the earlier tokens of its sequence.
     */
    private void runAsRows(List<BatchEntry> batch, CUdeviceptr hidden, float[] logitsOut, RowKind[] wanted,
            int[] argmaxOut, CandidateRequest[] requests, Candidates candidates) {
        CudaRowKernels rk = rows.k();
        int[] ids = rows.hostIds();
        int n = 0;
        long first = 0;   // the hidden input row of the pass's first row (rows run in batch order, as hidden's rows)
        for (int i = 0; i < batch.size(); i++) {
            BatchEntry e = batch.get(i);
            GpuSequence s = (GpuSequence) e.sequence();
            for (int t = e.from(); t < e.to(); t++) {
                ids[rk.tokenIndex(n)] = e.tokens()[t];
                ids[rk.positionIndex(n)] = s.length++;
                ids[rk.slotIndex(n)] = s.slot;
                rowEntry[n] = t == e.to() - 1 ? i : -1;
                if (++n == rk.capacity()) {
                    runRowPass(n, hidden, first, logitsOut, wanted, argmaxOut, requests, candidates);
                    first += n;
                    n = 0;
                }
            }
        }
        if (n > 0) {
            runRowPass(n, hidden, first, logitsOut, wanted, argmaxOut, requests, candidates);
        }
    }

    /**
     * One pass of the {@code n} rows in the host ids (eager and checked the first time for each row count, then a
     * graph per row count); the logits of rows that end an entry to that entry's row of {@code logitsOut}, or, for an
     * entry whose logits are not {@code wanted}, the row's device argmax to {@code argmaxOut}. Runs of adjacent rows
     * take one copy each. With {@code hidden} (a later part of a split model), the pass's input rows are its rows from
     * {@code first} on.
     */
    private void runRowPass(int n, CUdeviceptr hidden, long first, float[] logitsOut, RowKind[] wanted,
            int[] argmaxOut, CandidateRequest[] requests, Candidates candidates) {
        long t0 = PROFILE_PASSES > 0 ? System.nanoTime() : 0;
        DecodeRows b = rows;
        int vocab = config.vocabSize();
        cuda.uploadAsync(b.hostIds(), b.ids());
        if (hidden != null) {
            long rowBytes = config.embeddingLength() * 4L;
            cuda.copyAsync(hidden.withByteOffset(first * rowBytes), b.x(), n * rowBytes);
        }
        if (rowsValidated.add(n)) {
            enqueueRows(n);
            cuda.checkErrors("the first batched step of " + n + " rows (eager)");
            t0 = 0;
        } else if (profiling("rows " + n)) {
            t0 = 0;   // an eager, timed pass: not counted in the host times
        } else {
            rowGraphs.computeIfAbsent(n, kk -> cuda.capture(() -> enqueueRows(n))).launch();
        }
        boolean anyArgmax = false;
        int candidateRows = 0;
        if (candidateRow.length < n) {
            candidateRow = new int[n];
            candidateEntry = new int[n];
        }
        for (int r = 0; r < n; r++) {
            RowKind kind = rowEntry[r] < 0 || wanted == null ? RowKind.LOGITS : wanted[rowEntry[r]];
            anyArgmax |= kind == RowKind.ARGMAX;
            if (kind == RowKind.CANDIDATES) {
                candidateRow[candidateRows] = r;
                candidateEntry[candidateRows++] = rowEntry[r];
            }
        }
        if (candidateRows > 0) {
            deviceCandidates(b.logits(), candidateRows, requests, candidates);   // waits for the stream
        }
        cuda.synchronize();
        long t1 = PROFILE_PASSES > 0 ? System.nanoTime() : 0;
        int[] best = b.hostArgmax();
        if (anyArgmax) {
            cuda.download(b.argmax(), best);   // 4 bytes a row (the rows past n are stale and not read)
        }
        // rowCopy[r]: row r's logits go to the host (it ends an entry that wants them, or the kernel flagged it)
        for (int r = 0; r < n; r++) {
            int e = rowEntry[r];
            boolean copy = e >= 0;
            if (e >= 0 && wanted != null && wanted[e] == RowKind.ARGMAX) {
                argmaxOut[e] = best[r];
                copy = best[r] < 0;
            } else if (e >= 0 && wanted != null && wanted[e] == RowKind.CANDIDATES) {
                copy = !requests[e].decides(candidates, e);   // the raw row only when the candidates cannot tell
            }
            rowCopy[r] = copy;
        }
        MemorySegment host = b.hostLogits();
        for (int r = 0; r < n; ) {
            if (!rowCopy[r]) {
                r++;
                continue;
            }
            int end = r + 1;
            while (end < n && rowCopy[end]) {
                end++;
            }
            long bytes = (long) vocab * 4;
            cuda.download(b.logits().withByteOffset(r * bytes), host.asSlice(r * bytes, (end - r) * bytes));
            for (; r < end; r++) {
                int e = rowEntry[r];
                MemorySegment.copy(host, ValueLayout.JAVA_FLOAT, r * bytes, logitsOut, e * vocab, vocab);
            }
        }
        if (PROFILE_PASSES > 0 && t0 != 0) {
            double[] t = hostTimes.computeIfAbsent("rows " + n, k -> new double[3]);
            t[0]++;
            t[1] += (t1 - t0) / 1e6;
            t[2] += (System.nanoTime() - t1) / 1e6;
        }
    }

    // ---- sampling candidates on the device ---------------------------------------------------------------------------

    /** Per selected row of a candidates launch: its row in the logits buffer and its batch entry. */
    private int[] candidateRow = new int[Math.max(1, DECODE_ROWS)];
    private int[] candidateEntry = new int[Math.max(1, DECODE_ROWS)];
    /** Rows of the device work buffer, the adjustment words, the output words: allocated at first use, then reused. */
    private CUdeviceptr candidateWork;
    private CUdeviceptr candidateOut;
    private CUdeviceptr candidateAdjust;
    private int candidateCapacity;
    private long candidateAdjustWords;
    private int[] hostAdjust = new int[256];
    private int[] hostCandidates = new int[0];

    /**
     * Runs {@code sample_candidates} over {@code count} rows of {@code logitsBase} ({@code candidateRow[j]}, for entry
     * {@code candidateEntry[j]} with its request's adjustments and draw), after what is on the stream, and reads each
     * output into that entry's row of {@code candidates}. Waits for the stream.
     *
     * @throws IllegalArgumentException when a request's draw is not a uniform in [0, 1) with a finite positive 1/T
     */
    private void deviceCandidates(CUdeviceptr logitsBase, int count, CandidateRequest[] requests,
            Candidates candidates) {
        if (Candidates.K != CudaKernels.CANDIDATES_K || Candidates.DEVICE_WORDS != CudaKernels.CANDIDATE_WORDS) {
            throw new IllegalStateException("Candidates.K " + Candidates.K + " and the kernel's " + CudaKernels.CANDIDATES_K
                    + " differ");
        }
        int vocab = config.vocabSize();
        ensureCandidateBuffers(count);
        int words = count * CudaKernels.ADJUST_HEADER_WORDS;
        for (int j = 0; j < count; j++) {
            words += requests[candidateEntry[j]].adjustments().size() * CudaKernels.ADJUST_ENTRY_WORDS;
        }
        if (hostAdjust.length < words) {
            hostAdjust = new int[Math.max(words, hostAdjust.length * 2)];
        }
        int at = count * CudaKernels.ADJUST_HEADER_WORDS;
        for (int j = 0; j < count; j++) {
            LogitAdjustments adj = requests[candidateEntry[j]].adjustments();
            int h = j * CudaKernels.ADJUST_HEADER_WORDS;
            hostAdjust[h] = candidateRow[j];
            hostAdjust[h + 1] = at;
            hostAdjust[h + 2] = adj.size();
            hostAdjust[h + 3] = Float.floatToRawIntBits(adj.repeat());
            // the draw over the whole row: u (NaN: none) and 1/T as doubles, low word first
            CandidateRequest request = requests[candidateEntry[j]];
            double u = request.drawUniform();
            double inverseTemperature = Double.isNaN(u) ? Double.NaN : request.drawInverseTemperature();
            Candidates.checkDraw(u, inverseTemperature);
            long uBits = Double.doubleToRawLongBits(u);
            long tBits = Double.doubleToRawLongBits(inverseTemperature);
            hostAdjust[h + 4] = (int) uBits;
            hostAdjust[h + 5] = (int) (uBits >>> 32);
            hostAdjust[h + 6] = (int) tBits;
            hostAdjust[h + 7] = (int) (tBits >>> 32);
            for (int a = 0; a < adj.size(); a++) {
                int id = adj.id(a);
                if (id < 0 || id >= vocab) {
                    throw new IllegalArgumentException("adjustment of token " + id + " (expected 0.." + (vocab - 1) + ")");
                }
                hostAdjust[at] = id;
                hostAdjust[at + 1] = adj.flags(a);
                hostAdjust[at + 2] = Float.floatToRawIntBits(adj.bias(a));
                hostAdjust[at + 3] = Float.floatToRawIntBits(adj.subtrahend(a));
                at += CudaKernels.ADJUST_ENTRY_WORDS;
            }
        }
        if (candidateAdjustWords < words) {
            if (candidateAdjust != null) {
                cuda.synchronize();   // the last launch may still read the old buffer
                cuda.free(candidateAdjust, candidateAdjustWords * 4);
            }
            candidateAdjustWords = Math.max(words, 2 * candidateAdjustWords);
            candidateAdjust = cuda.alloc(candidateAdjustWords * 4);
        }
        cuda.uploadAsync(hostAdjust, words, candidateAdjust);
        k.sampleCandidates(logitsBase, count, vocab, candidateWork, candidateAdjust, candidateOut);
        int outWords = count * CudaKernels.CANDIDATE_WORDS;
        cuda.download(candidateOut, hostCandidates, outWords);   // waits for the stream
        for (int j = 0; j < count; j++) {
            candidates.readDevice(candidateEntry[j], hostCandidates, j * CudaKernels.CANDIDATE_WORDS);
        }
    }

    /** The work and output buffers for the most rows one launch may take (a row pass's capacity, or 1). */
    private void ensureCandidateBuffers(int count) {
        if (candidateWork != null) {
            if (count > candidateCapacity) {
                throw new IllegalStateException("candidates of " + count + " rows (capacity " + candidateCapacity + ")");
            }
            return;
        }
        int capacity = Math.max(count, rows != null ? rows.k().capacity() : 1);
        long workBytes = (long) capacity * config.vocabSize() * 4;
        long outBytes = (long) capacity * CudaKernels.CANDIDATE_WORDS * 4;
        CUdeviceptr work = buffer(workBytes);
        CUdeviceptr out = buffer(outBytes);
        frees.add(() -> {
            if (candidateAdjust != null) {
                cuda.free(candidateAdjust, candidateAdjustWords * 4);
                candidateAdjust = null;
            }
        });
        candidateWork = work;
        candidateOut = out;
        candidateCapacity = capacity;
        hostCandidates = new int[capacity * CudaKernels.CANDIDATE_WORDS];
        if (candidateRow.length < capacity) {
            candidateRow = new int[capacity];
            candidateEntry = new int[capacity];
        }
    }

    /** Host wall time of row passes by kind while profiling: passes, ms to the GPU's end, ms of logits download. */
    private final java.util.Map<String, double[]> hostTimes = new java.util.TreeMap<>();

    private int takeSlot() {
        for (int i = 0; i < slots; i++) {
            if (!slotUsed[i]) {
                slotUsed[i] = true;
                return i;
            }
        }
        throw new IllegalStateException("no free slot");  // checked by step before
    }

    @Override
    public KvStats kvStats() {
        int used = 0;
        // sequences are tracked through their slots' lengths
        for (GpuSequence s : live) {
            used += (s.length + BLOCK_POSITIONS - 1) / BLOCK_POSITIONS;
        }
        return new KvStats(BLOCK_POSITIONS, slots * ((contextSize + BLOCK_POSITIONS - 1) / BLOCK_POSITIONS), used);
    }

    private final List<GpuSequence> live = new ArrayList<>();

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            freeAll();
        } finally {
            onClose.run();
        }
    }

    private void freeAll() {
        cuda.synchronize();
        if (!profiles.isEmpty() || !hostTimes.isEmpty()) {
            System.err.print(profileReport());
            profiles.values().forEach(KernelProfile::close);
            profiles.clear();
        }
        dropDecodeGraph();
        chunkGraphs.values().forEach(CudaContext.Graph::close);
        chunkGraphs.clear();
        prefillGraphs.values().forEach(CudaContext.Graph::close);
        prefillGraphs.clear();
        rowGraphs.values().forEach(CudaContext.Graph::close);
        rowGraphs.clear();
        for (int i = frees.size() - 1; i >= 0; i--) {
            frees.get(i).run();
        }
        frees.clear();
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("model is closed");
        }
    }

    private final class GpuSequence implements Sequence {
        int slot = -1;
        int length;
        boolean closedSeq;

        GpuSequence() {
            live.add(this);
        }

        CudaInferenceModel owner() {
            return CudaInferenceModel.this;
        }

        @Override
        public int length() {
            return length;
        }

        @Override
        public void truncate(int newLength) {
            if (closedSeq) {
                throw new IllegalStateException("sequence is closed");
            }
            if (newLength < 0 || newLength > length) {
                throw new IllegalArgumentException("truncate a sequence of " + length + " positions to " + newLength
                        + " (expected 0.." + length + ")");
            }
            length = newLength;  // positions past the length are overwritten by the next tokens
        }

        @Override
        public boolean isClosed() {
            return closedSeq;
        }

        @Override
        public void close() {
            if (!closedSeq) {
                closedSeq = true;
                live.remove(this);
                if (slot >= 0) {
                    slotUsed[slot] = false;
                    slot = -1;
                }
            }
        }
    }

    /** Options of {@link EngineOptions} this engine honours: context size and sequences (KV slots). */
    public static int slotsFor(EngineOptions options) {
        return options.maxSequences();
    }
}
