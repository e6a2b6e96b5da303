package aether.llm.engine;

import aether.llm.arch.Architecture;
import aether.llm.arch.ForwardGraph;
import aether.llm.arch.Numerics;
import aether.scheduler.exec.GraphExecutor;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Feeds batches of tokens through an {@link Architecture}: builds the forward graph of each batch shape (new tokens,
 * cached positions) once, keeps the most recently used ones, and reruns them with new inputs. A shape recurs across
 * sequences (every sequence's n-th decode step has the same shape), not within one: the Graph API's attention takes
 * the cached positions as its key dimension, so a decode step at a new length is a new shape. Not thread-safe.
 */
public final class ForwardRunner {

    /** Graphs kept: enough for every decode shape of a few hundred positions. */
    static final int MAX_CACHED_GRAPHS = 512;

    private final Architecture architecture;
    private final GraphExecutor executor;
    private final Numerics numerics;
    private final Map<Long, ForwardGraph> graphs = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, ForwardGraph> eldest) {
            return size() > MAX_CACHED_GRAPHS;
        }
    };
    private int graphsBuilt;

    /**
     * @param numerics how the graphs round activations: {@link Numerics#GGML_CPU} reproduces llama.cpp's CPU backend
     *                 on an executor that computes in float ({@code ReferenceExecutor}); {@link Numerics#FLOAT32} is
     *                 for executors whose kernels quantize activations themselves
     */
    public ForwardRunner(Architecture architecture, GraphExecutor executor, Numerics numerics) {
        this.architecture = Objects.requireNonNull(architecture, "architecture");
        this.executor = Objects.requireNonNull(executor, "executor");
        this.numerics = Objects.requireNonNull(numerics, "numerics");
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
        if (ids.length == 0) {
            throw new IllegalArgumentException("forward of no tokens");
        }
        int past = cache.length();
        if (ids.length > cache.capacity() - past) {
            throw new IllegalStateException("KV cache full: holds " + past + " of " + cache.capacity()
                    + " positions, cannot run " + ids.length + " more");
        }
        ForwardGraph graph = graph(ids.length, past);
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

    private ForwardGraph graph(int tokens, int past) {
        long key = ((long) tokens << 32) | past;
        ForwardGraph g = graphs.get(key);
        if (g == null) {
            g = architecture.buildForward(tokens, past, numerics);
            graphs.put(key, g);
            graphsBuilt++;
        }
        return g;
    }
}
