package aether.llm.engine;

import aether.llm.arch.Architecture;
import aether.llm.arch.ForwardGraph;
import aether.llm.arch.Numerics;
import aether.llm.arch.StepShape;
import aether.scheduler.exec.GraphExecutor;
import java.util.LinkedHashMap;
import java.util.Objects;

/**
 * Feeds batches of tokens through an {@link Architecture}: builds the forward graph of each batch shape (new tokens,
 * cached positions) once, keeps the most recently used ones, and reruns them with new inputs. A shape recurs across
 * sequences (every sequence's n-th decode step has the same shape), not within one: the Graph API's attention takes
 * the cached positions as its key dimension, so a decode step at a new length is a new shape.
 *
 * <p>A graph keeps the inputs of its last run bound (the Graph API has no unbinding), including the cached keys and
 * values, so the cache of graphs is bounded by those retained elements ({@link #MAX_RETAINED_ELEMENTS}) as well as by
 * count. Not thread-safe.
 */
public final class ForwardRunner {

    /** Graphs kept at most: enough for every decode shape of a few hundred positions. */
    static final int MAX_CACHED_GRAPHS = 512;

    /** Cached key/value elements the kept graphs may retain together (held as doubles by the reference executor). */
    static final long MAX_RETAINED_ELEMENTS = 8L << 20;

    private final Architecture architecture;
    private final GraphExecutor executor;
    private final Numerics numerics;
    private final int maxGraphs;
    private final long maxRetainedElements;
    private final LinkedHashMap<Long, ForwardGraph> graphs = new LinkedHashMap<>(64, 0.75f, true);
    private long retainedElements;
    private int graphsBuilt;

    /**
     * @param numerics how the graphs round activations: {@link Numerics#GGML_CPU} reproduces llama.cpp's CPU backend
     *                 on an executor that computes in float ({@code ReferenceExecutor}); {@link Numerics#FLOAT32} is
     *                 for executors whose kernels quantize activations themselves
     */
    public ForwardRunner(Architecture architecture, GraphExecutor executor, Numerics numerics) {
        this(architecture, executor, numerics, MAX_CACHED_GRAPHS, MAX_RETAINED_ELEMENTS);
    }

    ForwardRunner(Architecture architecture, GraphExecutor executor, Numerics numerics, int maxGraphs,
            long maxRetainedElements) {
        this.architecture = Objects.requireNonNull(architecture, "architecture");
        this.executor = Objects.requireNonNull(executor, "executor");
        this.numerics = Objects.requireNonNull(numerics, "numerics");
        this.maxGraphs = maxGraphs;
        this.maxRetainedElements = maxRetainedElements;
    }

    public Architecture architecture() {
        return architecture;
    }

    /** How many graphs were built so far (a cache miss builds one). */
    public int graphsBuilt() {
        return graphsBuilt;
    }

    /**
     * Runs {@code ids} at the positions after {@code cache}'s, appends their keys and values to {@code cache} and
     * returns the logits of the last of them (a fresh array of vocab size).
     *
     * @throws IllegalArgumentException when {@code ids} is empty or holds an id outside the vocabulary
     * @throws IllegalStateException    when the cache cannot hold the new positions (the cache is left unchanged)
     */
    public float[] forward(int[] ids, KvCache cache) {
        return forward(ids, cache, StepShape.Output.LOGITS);
    }

    /**
     * {@link #forward(int[], KvCache)} returning the last token's logits, or for {@link StepShape.Output#HIDDEN} its
     * final hidden state (after the output norm, before the LM head; a fresh array of {@code n_embd}).
     */
    public float[] forward(int[] ids, KvCache cache, StepShape.Output output) {
        if (ids.length == 0) {
            throw new IllegalArgumentException("forward of no tokens");
        }
        int past = cache.length();
        if (ids.length > cache.capacity() - past) {
            throw new IllegalStateException("KV cache full: holds " + past + " of " + cache.capacity()
                    + " positions, cannot run " + ids.length + " more");
        }
        ForwardGraph graph = graph(ids.length, past, output);
        int layers = cache.layers();
        float[][] keys = new float[layers][];
        float[][] values = new float[layers][];
        for (int l = 0; l < layers; l++) {
            keys[l] = cache.keys(l);
            values[l] = cache.values(l);
        }
        ForwardGraph.Result r = graph.run(executor, ids, keys, values);
        cache.append(ids.length, r.newKeys(), r.newValues());
        return r.logits();
    }

    private ForwardGraph graph(int tokens, int past, StepShape.Output output) {
        long key = ((long) tokens << 33) | ((long) past << 1) | output.ordinal();
        ForwardGraph g = graphs.get(key);
        if (g == null) {
            g = architecture.buildForward(tokens, past, numerics, output);
            graphsBuilt++;
            retainedElements += retained(g);
            graphs.put(key, g);
            var eldest = graphs.entrySet().iterator();
            while (graphs.size() > 1 && (graphs.size() > maxGraphs
                    || retainedElements > maxRetainedElements)) {
                retainedElements -= retained(eldest.next().getValue());
                eldest.remove();
            }
        }
        return g;
    }

    /** Number of cached-key/value elements a graph keeps bound after a run. */
    private long retained(ForwardGraph g) {
        var c = architecture.config();
        return (long) g.past() * (c.keyWidth() + c.valueWidth()) * c.blockCount();
    }

    /** Graphs currently kept (for tests and diagnostics). */
    int cachedGraphs() {
        return graphs.size();
    }
}
