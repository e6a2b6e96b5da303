package aether.scheduler.compile;

import aether.runtime.ir.OpGraph;
import aether.scheduler.exec.GraphExecutor;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.exec.WeightRows;
import aether.scheduler.exec.WeightTensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;

/**
 * A {@link GraphExecutor} that compiles each graph it sees ({@link Compiler}: passes, fusion, arena) and runs the
 * {@link CompiledGraph}, so {@code graph.evaluate(new FusedExecutor(), y)} uses fused kernels. Bound {@link
 * WeightTensor}s become compile-time constants (a graph with other weights is compiled again); host tensors are copied
 * into the compiled graph's input segments on every call. Compiled graphs are cached per graph and weights, up to
 * {@code maxCached}; past that a graph is compiled, run and freed per call. Results equal the reference executor's bit
 * for bit. Graphs the compiler does not support (non-f32 values, attention, rope, ...) complete exceptionally with the
 * compiler's message. Thread-safe: one run at a time per compiled graph.
 */
public final class FusedExecutor implements GraphExecutor, AutoCloseable {

    private record Key(OpGraph graph, List<WeightRows> weights) {}

    private final Compiler compiler;
    private final Executor executor;
    private final int maxCached;
    private final Map<Key, CompiledGraph> cache = new ConcurrentHashMap<>();

    /** Standard passes and fusion, on the calling thread, caching up to 64 graphs. */
    public FusedExecutor() {
        this(Compiler.standard(), Runnable::run, 64);
    }

    public FusedExecutor(Compiler compiler, Executor executor, int maxCached) {
        this.compiler = Objects.requireNonNull(compiler, "compiler");
        this.executor = Objects.requireNonNull(executor, "executor");
        if (maxCached < 0) {
            throw new IllegalArgumentException("fused executor: maxCached must be >= 0 (found " + maxCached + ")");
        }
        this.maxCached = maxCached;
    }

    @Override
    public CompletionStage<List<HostTensor>> execute(OpGraph graph, Map<Integer, ? extends TensorValue> inputs) {
        Objects.requireNonNull(graph, "graph");
        Objects.requireNonNull(inputs, "inputs");
        return CompletableFuture.supplyAsync(() -> run(graph, inputs), executor);
    }

    private List<HostTensor> run(OpGraph graph, Map<Integer, ? extends TensorValue> inputs) {
        Map<Integer, TensorValue> constants = new HashMap<>();
        List<WeightRows> weights = new ArrayList<>();
        for (int id = 0; id < graph.size(); id++) {
            if (inputs.get(id) instanceof WeightTensor w) {
                constants.put(id, w);
                weights.add(w.rows());
            }
        }
        Key key = new Key(graph, weights);
        CompiledGraph cg = cache.get(key);
        boolean cached = cg != null;
        if (!cached) {
            cg = compiler.compile(new Program(graph, constants));
            if (cache.size() < maxCached) {
                CompiledGraph raced = cache.putIfAbsent(key, cg);
                if (raced != null) {
                    cg.close();
                    cg = raced;
                }
                cached = true;
            }
        }
        try {
            synchronized (cg) {
                // CompiledGraph.set takes source ids and maps them through the passes.
                for (Map.Entry<Integer, ? extends TensorValue> e : inputs.entrySet()) {
                    if (e.getValue() instanceof HostTensor h) {
                        if (!h.type().equals(graph.node(e.getKey()).type())) {
                            throw new IllegalArgumentException("input %" + e.getKey() + ": expected "
                                    + graph.node(e.getKey()).type() + ", found " + h.type());
                        }
                        cg.set(e.getKey(), h.toFloatArray());
                    }
                }
                cg.run();
                List<HostTensor> out = new ArrayList<>(cg.outputCount());
                for (int i = 0; i < cg.outputCount(); i++) {
                    out.add(HostTensor.ofFloats(cg.outputFloats(i), graph.node(graph.outputs().get(i)).shape()));
                }
                return out;
            }
        } finally {
            if (!cached) {
                cg.close();
            }
        }
    }

    /** Frees every cached compiled graph. */
    @Override
    public void close() {
        for (CompiledGraph cg : cache.values()) {
            cg.close();
        }
        cache.clear();
    }
}
