package aether.llm.engine;

import aether.device.cpu.KernelPool;
import aether.device.cpu.kernel.Matmul;
import aether.llm.arch.Architecture;
import aether.llm.arch.LayerRange;
import aether.llm.arch.Numerics;
import aether.llm.arch.StepGraph;
import aether.llm.arch.StepShape;
import aether.llm.model.ModelConfig;
import aether.runtime.bench.StartupTrace;
import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.compile.KernelGraph;
import aether.scheduler.compile.PackedWeightCache;
import aether.scheduler.compile.Program;
import aether.scheduler.exec.CacheTensor;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The {@link InferenceModel} over a paged KV cache and shape-stable step graphs. The pool holds fixed blocks of
 * {@link #BLOCK_POSITIONS} positions (all layers), in f16 by default (f32 or q8_0 on request); a sequence takes blocks
 * as it grows and gives them back on {@code truncate}/{@code close}. A step packs the new tokens of all its entries into
 * one graph run whose shape is only (tokens, entries): the architecture's {@link StepGraph} for that shape is built and
 * compiled once and then reused for every step of that shape, with token ids, positions, cache rows and block tables
 * written into its I32 inputs. A step whose tokens exceed the batch size runs each entry alone, in chunks. Steps that
 * want a row per token ({@link Output#ALL_LOGITS}, or {@link Output#ALL_HIDDEN} for embeddings: a graph that ends at
 * the output norm, without the LM head) have shapes of their own, kept apart from the decode and prefill shapes so
 * that they never evict them.
 *
 * <p>Two backends run the same graphs: {@link #open} compiles them into {@link KernelGraph}s (f32 activations,
 * quantized weights multiplied in place on a {@link KernelPool}; a decode step allocates nothing), {@link #reference}
 * evaluates them on the {@link ReferenceExecutor} (float64 accumulation; for tests).
 *
 * <p>A model opened on a {@link LayerRange} runs only those layers (one device's share of a model split between
 * devices, {@code --gpu-layers}): its KV pool holds those layers' keys and values, a range after layer 0 takes the
 * residual stream of every new token instead of embedding the token ids ({@link #step(List, float[], Output, float[])}),
 * and a range that ends before the last layer answers only {@link Output#ALL_HIDDEN}, whose rows are then the unnormed
 * residual stream after its last layer (the next range's input).
 *
 * <p>Not thread-safe: one engine thread drives the model and its sequences.
 */
public final class PagedInferenceModel implements InferenceModel {

    /** Positions per KV block. */
    public static final int BLOCK_POSITIONS = 16;
    /**
     * Compiled step shapes kept at most; the least recently used one is closed beyond that (each prompt length
     * compiles its own graph, and a graph holds its arena).
     */
    static final int MAX_SHAPES = 8;
    /** Row-per-token shapes (embeddings, prompt log-probabilities) kept at most, apart from those. */
    static final int MAX_ROW_SHAPES = 4;

    private final Architecture architecture;
    private final LayerRange layers;
    private final Numerics numerics;
    private final int contextSize;
    private final int batchSize;
    private final int blocksPerSequence;
    private final DType kvType;
    private final KvBlockPool pool;
    private final Backend backend;
    private final Runnable onClose;
    private final List<Shaped> runners = new ArrayList<>();
    private final List<Shaped> rowRunners = new ArrayList<>();
    // staging for one graph run, sized for the largest step
    private final int[] ids;
    private final int[] positions;
    private final int[] slots;
    private final int[] table;
    private final int[] rows;
    private long stepStamp;
    private boolean closed;

    private PagedInferenceModel(Architecture architecture, LayerRange layers, Numerics numerics, int contextSize,
            int batchSize, int totalBlocks, DType kvType, Backend backend, Runnable onClose) {
        ModelConfig c = architecture.config();
        if (layers.count() != c.blockCount()) {
            throw new IllegalArgumentException(layers + " for a model of " + c.blockCount() + " layers");
        }
        if (contextSize < 1 || contextSize > c.contextLength()) {
            throw new IllegalArgumentException("context size " + contextSize + " (expected 1.." + c.contextLength()
                    + ", the model's context length)");
        }
        if (kvType.ggml() == GgmlType.Q8_0 && (c.keyWidth() % 32 != 0 || c.valueWidth() % 32 != 0)) {
            throw new IllegalArgumentException("KV cache type q8_0 needs key and value rows of whole 32-blocks (found "
                    + c.keyWidth() + " and " + c.valueWidth() + "); use f16");
        }
        this.architecture = architecture;
        this.layers = layers;
        this.numerics = numerics;
        this.contextSize = contextSize;
        this.batchSize = batchSize;
        this.blocksPerSequence = (contextSize + BLOCK_POSITIONS - 1) / BLOCK_POSITIONS;
        this.kvType = kvType;
        this.pool = new KvBlockPool(totalBlocks);
        this.backend = backend;
        this.onClose = Objects.requireNonNull(onClose, "onClose");
        this.ids = new int[batchSize];
        this.positions = new int[batchSize];
        this.slots = new int[batchSize];
        this.table = new int[Math.multiplyExact(batchSize, blocksPerSequence)];
        this.rows = new int[batchSize];
    }

    /**
     * The fast model: step graphs compiled into {@link KernelGraph}s over a KV pool of {@code totalBlocks} blocks,
     * {@code options.threads()} compute threads (0 = one per core), float32 activations.
     *
     * @param onClose run once by {@link #close()} (e.g. closing the model's file)
     */
    public static PagedInferenceModel open(Architecture architecture, EngineOptions options, int contextSize,
            int totalBlocks, Runnable onClose) {
        return open(architecture, LayerRange.all(architecture.config().blockCount()), options, contextSize,
                totalBlocks, onClose);
    }

    /** {@link #open(Architecture, EngineOptions, int, int, Runnable)} running only the layers of {@code layers}. */
    public static PagedInferenceModel open(Architecture architecture, LayerRange layers, EngineOptions options,
            int contextSize, int totalBlocks, Runnable onClose) {
        DType kv = kvType(options.kvType());
        return open(architecture, layers, Numerics.FLOAT32, contextSize, options.batchSize(), totalBlocks, kv,
                options.threads(), onClose);
    }

    /** {@link #open} with every knob explicit (tests use {@link Numerics#GGML_CPU} to compare with llama.cpp). */
    public static PagedInferenceModel open(Architecture architecture, Numerics numerics, int contextSize,
            int batchSize, int totalBlocks, DType kvType, int threads, Runnable onClose) {
        return open(architecture, LayerRange.all(architecture.config().blockCount()), numerics, contextSize,
                batchSize, totalBlocks, kvType, threads, onClose);
    }

    /** {@link #open(Architecture, Numerics, int, int, int, DType, int, Runnable)} for the layers of a range. */
    public static PagedInferenceModel open(Architecture architecture, LayerRange layers, Numerics numerics,
            int contextSize, int batchSize, int totalBlocks, DType kvType, int threads, Runnable onClose) {
        int n = threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
        KernelBackend backend = new KernelBackend(architecture.config(), layers, totalBlocks * BLOCK_POSITIONS,
                kvType, n);
        try {
            return new PagedInferenceModel(architecture, layers, numerics, contextSize, batchSize, totalBlocks,
                    kvType, backend, onClose);
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
    }

    /** The same engine evaluating its graphs on the reference executor (exact, slow; for tests). */
    public static PagedInferenceModel reference(Architecture architecture, Numerics numerics, int contextSize,
            int batchSize, int totalBlocks, DType kvType, Runnable onClose) {
        return reference(architecture, LayerRange.all(architecture.config().blockCount()), numerics, contextSize,
                batchSize, totalBlocks, kvType, onClose);
    }

    /** {@link #reference(Architecture, Numerics, int, int, int, DType, Runnable)} for the layers of a range. */
    public static PagedInferenceModel reference(Architecture architecture, LayerRange layers, Numerics numerics,
            int contextSize, int batchSize, int totalBlocks, DType kvType, Runnable onClose) {
        ModelConfig c = architecture.config();
        int slotCount = Math.multiplyExact(totalBlocks, BLOCK_POSITIONS);
        return new PagedInferenceModel(architecture, layers, numerics, contextSize, batchSize, totalBlocks, kvType,
                new ReferenceBackend(layers, slotCount, c.keyWidth(), c.valueWidth(), kvType), onClose);
    }

    /** The KV type named by {@link EngineOptions#kvType()}. */
    public static DType kvType(String name) {
        return switch (name) {
            case "f32" -> DType.F32;
            case "f16" -> DType.F16;
            case "q8_0" -> DType.quantized(GgmlType.Q8_0);
            default -> throw new IllegalArgumentException("KV cache type '" + name + "' (expected f16, q8_0 or f32)");
        };
    }

    @Override
    public ModelConfig config() {
        return architecture.config();
    }

    /** The layers this model runs (all of them unless it was opened on a range). */
    public LayerRange layers() {
        return layers;
    }

    @Override
    public int contextSize() {
        return contextSize;
    }

    @Override
    public Sequence newSequence() {
        checkOpen();
        return new PagedSequence(blocksPerSequence);
    }

    @Override
    public KvStats kvStats() {
        return new KvStats(BLOCK_POSITIONS, pool.total(), pool.used());
    }

    /** Bytes of the KV pool (keys and values of every layer, every block, in the cache's storage type). */
    public long kvCacheBytes() {
        ModelConfig c = config();
        GgmlType t = kvType.ggml();
        long perPosition = layers.size() * (t.bytesFor(c.keyWidth()) + t.bytesFor(c.valueWidth()));
        return perPosition * pool.total() * BLOCK_POSITIONS;
    }

    @Override
    public void step(List<BatchEntry> batch, Output output, float[] out) {
        step(batch, null, output, out);
    }

    /**
     * {@link #step(List, Output, float[])} for a model of a {@link LayerRange} that starts after layer 0: {@code
     * hidden} holds the residual stream entering its first layer, one row of {@code n_embd} floats per new token in
     * batch order (entry 0's tokens first), which replaces the embedding of the token ids (they are still checked and
     * counted). A model that embeds its tokens takes {@code hidden == null}.
     *
     * @throws IllegalArgumentException as {@link #step(List, Output, float[])}; when {@code hidden} is missing, not
     *                                  wanted, or shorter than tokens × n_embd; or for an output a range that ends
     *                                  before the last layer cannot give (only {@link Output#ALL_HIDDEN})
     */
    public void step(List<BatchEntry> batch, float[] hidden, Output output, float[] out) {
        checkOpen();
        int vocab = config().vocabSize();
        int width = output.width(config());
        if (!layers.hasHead() && output != Output.ALL_HIDDEN) {
            throw new IllegalArgumentException(output + " from a model of " + layers + ": a range that ends before "
                    + "the last layer gives its residual stream only (ALL_HIDDEN)");
        }
        if (layers.embeds() != (hidden == null)) {
            throw new IllegalArgumentException(layers.embeds()
                    ? "hidden input rows for a model of " + layers + " (it embeds its token ids; expected none)"
                    : "no hidden input rows for a model of " + layers + " (expected the residual stream after layer "
                            + (layers.first() - 1) + ", one row per token)");
        }
        int entries = batch.size();
        if (entries == 0) {
            throw new IllegalArgumentException("step of an empty batch");
        }
        long rowCount = output.rows(batch);
        if (out.length < rowCount * width) {
            throw new IllegalArgumentException("output array of " + out.length + " floats for " + rowCount
                    + " rows of " + width + " (" + output + "; expected at least " + rowCount * width + ")");
        }
        long stamp = ++stepStamp;
        int newBlocks = 0;
        long tokens = 0;
        for (int e = 0; e < entries; e++) {
            BatchEntry entry = batch.get(e);
            if (!(entry.sequence() instanceof PagedSequence s) || s.owner() != this) {
                throw new IllegalArgumentException("sequence not created by this model");
            }
            if (s.closed) {
                throw new IllegalArgumentException("step on a closed sequence");
            }
            if (s.stamp == stamp) {
                throw new IllegalArgumentException("a sequence appears twice in one step");
            }
            s.stamp = stamp;
            int[] t = entry.tokens();
            for (int i = entry.from(); i < entry.to(); i++) {
                if (t[i] < 0 || t[i] >= vocab) {
                    throw new IllegalArgumentException("token id " + t[i] + " at index " + i + " (expected 0.."
                            + (vocab - 1) + ")");
                }
            }
            int after = s.length + entry.length();
            if (after > contextSize) {
                throw new KvCacheFullException("context full: a sequence of " + s.length + " positions cannot take "
                        + entry.length() + " more (context size " + contextSize + ")");
            }
            newBlocks += blocks(after) - s.blockCount;
            tokens += entry.length();
        }
        if (hidden != null && hidden.length < tokens * config().embeddingLength()) {
            throw new IllegalArgumentException("hidden input of " + hidden.length + " floats for " + tokens
                    + " tokens of n_embd " + config().embeddingLength() + " (expected at least "
                    + tokens * config().embeddingLength() + ")");
        }
        if (newBlocks > pool.freeBlocks()) {
            throw new KvCacheFullException("KV pool full: " + newBlocks + " more blocks needed, " + pool.freeBlocks()
                    + " of " + pool.total() + " free");
        }
        if (tokens <= batchSize) {
            run(batch, 0, entries, -1, -1, output, out, 0, hidden, 0);
            return;
        }
        long row = 0;
        for (int e = 0; e < entries; e++) {    // too many tokens for one graph: each entry alone, in chunks
            BatchEntry entry = batch.get(e);
            for (int from = entry.from(); from < entry.to(); from += batchSize) {
                int to = Math.min(entry.to(), from + batchSize);
                // the last-token row of an entry is overwritten by each chunk, so its last chunk's stays
                int offset = Math.toIntExact(output == Output.LAST_LOGITS ? (long) e * vocab : row * width);
                run(batch, e, e + 1, from, to, output, out, offset, hidden,
                        Math.toIntExact(row * config().embeddingLength()));
                row += to - from;
            }
        }
    }

    /**
     * One graph run over entries {@code [first, last)}; with {@code from >= 0} (a single entry) only its tokens
     * {@code [from, to)}. The output rows (each entry's last token, or every token) go one after another to {@code
     * out[offset]}. A range after layer 0 reads its input rows from {@code hidden[hiddenOffset]}.
     */
    private void run(List<BatchEntry> batch, int first, int last, int from, int to, Output output, float[] out,
            int offset, float[] hidden, int hiddenOffset) {
        boolean everyRow = output != Output.LAST_LOGITS;
        int t = 0;
        int outputs = 0;
        for (int e = first; e < last; e++) {
            BatchEntry entry = batch.get(e);
            PagedSequence s = (PagedSequence) entry.sequence();
            int a = from >= 0 ? from : entry.from();
            int b = from >= 0 ? to : entry.to();
            for (int i = a; i < b; i++) {
                int p = s.length + (i - a);
                int block = p / BLOCK_POSITIONS;
                while (s.blockCount <= block) {
                    s.blocks[s.blockCount++] = pool.allocate();
                }
                ids[t] = entry.tokens()[i];
                positions[t] = p;
                slots[t] = s.blocks[block] * BLOCK_POSITIONS + p % BLOCK_POSITIONS;
                System.arraycopy(s.blocks, 0, table, t * blocksPerSequence, block + 1);
                if (everyRow) {
                    rows[outputs++] = t;
                }
                t++;
            }
            if (!everyRow) {
                rows[outputs++] = t - 1;
            }
        }
        Runner runner = runner(t, outputs, output);
        try {
            runner.run(ids, positions, slots, table, rows, out, offset, hidden, hiddenOffset);
        } catch (RuntimeException ex) {
            for (int e = first; e < last; e++) {   // give back the blocks taken for positions that were not added
                ((PagedSequence) batch.get(e).sequence()).trimBlocks();
            }
            throw ex;
        }
        for (int e = first; e < last; e++) {
            BatchEntry entry = batch.get(e);
            ((PagedSequence) entry.sequence()).length += from >= 0 ? to - from : entry.length();
        }
    }

    /**
     * The runner of a shape, most recently used last (moving it there allocates nothing). Shapes with a row per token
     * (embeddings, prompt log-probabilities) are kept in a list of their own, so they never evict the decode and
     * prefill shapes (a recompile would stall every running stream).
     */
    private Runner runner(int tokens, int outputs, Output output) {
        // a range that ends before the head steps only with residual rows: those are its decode and prefill shapes
        List<Shaped> list = output == Output.LAST_LOGITS || !layers.hasHead() ? runners : rowRunners;
        StepShape.Output kind = output == Output.ALL_HIDDEN ? StepShape.Output.HIDDEN : StepShape.Output.LOGITS;
        int last = list.size() - 1;
        for (int i = last; i >= 0; i--) {   // indexed loop: no iterator per step
            Shaped s = list.get(i);
            if (s.tokens == tokens && s.outputs == outputs && s.kind == kind) {
                if (i != last) {
                    list.remove(i);
                    list.add(s);
                }
                return s.runner;
            }
        }
        if (list.size() >= (list == runners ? MAX_SHAPES : MAX_ROW_SHAPES)) {
            list.remove(0).runner.close();
        }
        StepShape shape = new StepShape(tokens, outputs, blocksPerSequence, pool.total(), BLOCK_POSITIONS, kvType,
                kind);
        StartupTrace.mark("compiling step shape " + tokens + "x" + outputs);
        StepGraph built = architecture.buildStep(shape, numerics, layers);
        StartupTrace.mark("step graph built");
        Runner r = backend.compile(built);
        StartupTrace.mark("step graph compiled (weights prepared)");
        list.add(new Shaped(tokens, outputs, kind, r));
        return r;
    }

    /** Step shapes compiled and kept now (at most {@value #MAX_SHAPES}; row-per-token shapes not counted). */
    int compiledShapes() {
        return runners.size();
    }

    /** Row-per-token shapes (embeddings, prompt log-probabilities) compiled and kept now. */
    int compiledRowShapes() {
        return rowRunners.size();
    }

    /**
     * Times the kernels of later steps: {@link #kernelNanos()} then gives nanoseconds in matmul and in every other
     * kernel (the fast backend only).
     */
    public void setProfiling(boolean on) {
        backend.setProfiling(on);
    }

    /**
     * {matmul, other kernels, the paged-attention part of the other kernels} nanoseconds since profiling was switched
     * on (zeros on the reference backend).
     */
    public long[] kernelNanos() {
        return backend.kernelNanos();
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            try {
                for (Shaped s : runners) {
                    s.runner.close();
                }
                for (Shaped s : rowRunners) {
                    s.runner.close();
                }
                backend.close();
            } finally {
                onClose.run();
            }
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("model is closed");
        }
    }

    private static int blocks(int positions) {
        return (positions + BLOCK_POSITIONS - 1) / BLOCK_POSITIONS;
    }

    private record Shaped(int tokens, int outputs, StepShape.Output kind, Runner runner) {}

    private final class PagedSequence implements Sequence {
        final int[] blocks;
        int blockCount;
        int length;
        long stamp;
        boolean closed;

        PagedSequence(int maxBlocks) {
            this.blocks = new int[maxBlocks];
        }

        PagedInferenceModel owner() {
            return PagedInferenceModel.this;
        }

        /** Releases blocks beyond those {@link #length} positions need. */
        void trimBlocks() {
            int keep = blocks(length);
            while (blockCount > keep) {
                pool.release(blocks[--blockCount]);
            }
        }

        @Override
        public int length() {
            return length;
        }

        @Override
        public void truncate(int newLength) {
            if (closed) {
                throw new IllegalStateException("sequence is closed");
            }
            if (newLength < 0 || newLength > length) {
                throw new IllegalArgumentException("truncate a sequence of " + length + " positions to " + newLength
                        + " (expected 0.." + length + ")");
            }
            length = newLength;
            trimBlocks();
        }

        @Override
        public boolean isClosed() {
            return closed;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                length = 0;
                trimBlocks();
            }
        }
    }

    // ---- backends ------------------------------------------------------------------------------------------------

    /**
     * Runs one compiled step shape; inputs are the first {@code tokens}/{@code outputs} entries of the arrays, and for
     * a range after layer 0 {@code tokens} rows of {@code hidden} from {@code hiddenOffset}.
     */
    private interface Runner extends AutoCloseable {
        void run(int[] ids, int[] positions, int[] slots, int[] table, int[] rows, float[] logits, int offset,
                float[] hidden, int hiddenOffset);

        @Override
        void close();
    }

    private interface Backend extends AutoCloseable {
        Runner compile(StepGraph graph);

        default void setProfiling(boolean on) {}

        default long[] kernelNanos() {
            return new long[3];
        }

        @Override
        void close();
    }

    /** Caches as {@link CacheTensor}s, graphs evaluated by the {@link ReferenceExecutor}. */
    private static final class ReferenceBackend implements Backend {
        private final CacheTensor[] keys;
        private final CacheTensor[] values;
        private final ReferenceExecutor executor = new ReferenceExecutor();

        ReferenceBackend(LayerRange layers, int slots, int keyWidth, int valueWidth, DType kvType) {
            this.keys = new CacheTensor[layers.count()];
            this.values = new CacheTensor[layers.count()];
            for (int il = layers.first(); il < layers.end(); il++) {
                keys[il] = new CacheTensor(kvType, slots, keyWidth);
                values[il] = new CacheTensor(kvType, slots, valueWidth);
            }
        }

        @Override
        public Runner compile(StepGraph g) {
            for (int il = g.layers().first(); il < g.layers().end(); il++) {
                g.graph().set(g.keyCache(il), keys[il]);
                g.graph().set(g.valueCache(il), values[il]);
            }
            StepShape shape = g.shape();
            return new Runner() {
                @Override
                public void run(int[] ids, int[] positions, int[] slots, int[] table, int[] rows, float[] logits,
                        int offset, float[] hidden, int hiddenOffset) {
                    int t = shape.tokens();
                    int b = shape.blocksPerSequence();
                    if (g.hiddenIn() != null) {
                        int n = g.config().embeddingLength();
                        g.graph().set(g.hiddenIn(), HostTensor.ofFloats(
                                Arrays.copyOfRange(hidden, hiddenOffset, hiddenOffset + t * n), Shape.of(t, n)));
                    }
                    g.graph().set(g.tokenIds(), HostTensor.ofInts(Arrays.copyOf(ids, t), Shape.of(t)));
                    g.graph().set(g.positions(), HostTensor.ofInts(Arrays.copyOf(positions, t), Shape.of(t)));
                    g.graph().set(g.slots(), HostTensor.ofInts(Arrays.copyOf(slots, t), Shape.of(t)));
                    g.graph().set(g.blockTable(), HostTensor.ofInts(Arrays.copyOf(table, t * b), Shape.of(t, b)));
                    g.graph().set(g.logitRows(), HostTensor.ofInts(Arrays.copyOf(rows, shape.outputs()),
                            Shape.of(shape.outputs())));
                    float[] out = g.graph().evaluate(executor, g.logits()).floats(g.logits());
                    System.arraycopy(out, 0, logits, offset, out.length);
                }

                @Override
                public void close() {}
            };
        }

        @Override
        public void close() {}
    }

    /** Caches in one shared arena in their storage type; graphs compiled into {@link KernelGraph}s. */
    private static final class KernelBackend implements Backend {
        private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
        private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

        private final Arena arena = Arena.ofShared();
        private final MemorySegment[] keys;
        private final MemorySegment[] values;
        private final KernelPool pool;
        private final Matmul matmul;
        /** Weights repacked for decode once per model (Q4_0), shared by every step shape's graph. */
        private final PackedWeightCache packed;
        private final KernelPool serialPool = new KernelPool(1, 0);   // starts no thread: runs on the caller
        private final Matmul serialMatmul = new Matmul(serialPool);
        private final List<KernelGraph> graphs = new ArrayList<>();
        private boolean profiling;

        KernelBackend(ModelConfig c, LayerRange layers, int slots, DType kvType, int threads) {
            this.keys = new MemorySegment[c.blockCount()];
            this.values = new MemorySegment[c.blockCount()];
            GgmlType t = kvType.ggml();
            for (int il = layers.first(); il < layers.end(); il++) {
                keys[il] = arena.allocate(Math.multiplyExact(t.bytesFor(c.keyWidth()), (long) slots), 64);
                values[il] = arena.allocate(Math.multiplyExact(t.bytesFor(c.valueWidth()), (long) slots), 64);
            }
            this.pool = new KernelPool(threads, KernelPool.DEFAULT_SPIN_NS);
            this.matmul = new Matmul(pool);
            this.packed = new PackedWeightCache();
        }

        @Override
        public Runner compile(StepGraph g) {
            Program.Snapshot snap = g.program();
            int[] map = snap.mapping();
            Map<Integer, MemorySegment> external = new HashMap<>();
            for (int il = g.layers().first(); il < g.layers().end(); il++) {
                external.put(map[g.keyCache(il).id()], keys[il]);
                external.put(map[g.valueCache(il).id()], values[il]);
            }
            KernelGraph kg = KernelGraph.compile(snap.program(), matmul, serialMatmul, packed, pool, external);
            kg.setProfiling(profiling);
            graphs.add(kg);
            // a range after layer 0 reads hidden_in, not the token ids (pruned from its program)
            MemorySegment idsIn = map[g.tokenIds().id()] >= 0 ? kg.input(map[g.tokenIds().id()]) : null;
            MemorySegment hiddenIn = g.hiddenIn() != null ? kg.input(map[g.hiddenIn().id()]) : null;
            int hiddenCount = g.shape().tokens() * g.config().embeddingLength();
            MemorySegment posIn = kg.input(map[g.positions().id()]);
            MemorySegment slotsIn = kg.input(map[g.slots().id()]);
            MemorySegment tableIn = kg.input(map[g.blockTable().id()]);
            MemorySegment rowsIn = kg.input(map[g.logitRows().id()]);
            MemorySegment out = kg.output(0);
            int tokens = g.shape().tokens();
            int outputs = g.shape().outputs();
            int tableLength = tokens * g.shape().blocksPerSequence();
            int logitCount = outputs * g.outputWidth();
            return new Runner() {
                @Override
                public void run(int[] ids, int[] positions, int[] slots, int[] table, int[] rows, float[] logits,
                        int offset, float[] hidden, int hiddenOffset) {
                    if (idsIn != null) {
                        MemorySegment.copy(ids, 0, idsIn, I32, 0, tokens);
                    }
                    if (hiddenIn != null) {
                        MemorySegment.copy(hidden, hiddenOffset, hiddenIn, F32, 0, hiddenCount);
                    }
                    MemorySegment.copy(positions, 0, posIn, I32, 0, tokens);
                    MemorySegment.copy(slots, 0, slotsIn, I32, 0, tokens);
                    MemorySegment.copy(table, 0, tableIn, I32, 0, tableLength);
                    MemorySegment.copy(rows, 0, rowsIn, I32, 0, outputs);
                    if (StartupTrace.on()) {   // a step allocates nothing otherwise
                        StartupTrace.mark("graph run of " + tokens + " tokens");
                    }
                    kg.run();
                    StartupTrace.mark("graph run done");
                    MemorySegment.copy(out, F32, 0, logits, offset, logitCount);
                }

                @Override
                public void close() {
                    graphs.remove(kg);
                    kg.close();
                }
            };
        }

        @Override
        public void setProfiling(boolean on) {
            profiling = on;
            for (KernelGraph kg : graphs) {
                kg.resetProfile();
                kg.setProfiling(on);
            }
        }

        @Override
        public long[] kernelNanos() {
            long[] sum = new long[3];
            for (KernelGraph kg : graphs) {
                long[] k = kg.kernelNanos();
                for (int i = 0; i < sum.length; i++) {
                    sum[i] += k[i];
                }
            }
            return sum;
        }

        @Override
        public void close() {
            pool.close();
            serialPool.close();
            arena.close();
            packed.close();
        }
    }
}
