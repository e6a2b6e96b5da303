package aether.scheduler.graph;

import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;
import aether.scheduler.exec.GraphExecutor;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.exec.WeightRows;
import aether.scheduler.exec.WeightTensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;

/**
 * A deferred DAG under construction: leaves ({@link #tensor}, {@link #weight}, {@link #indices}, {@link #input}) and the
 * operations chained on them through {@link Tensor}. Nodes are only ever appended, so ids are a topological order.
 * Leaves hold values that can be replaced ({@link #set}) between evaluations, which is how optimizers update parameters.
 * Not thread-safe: build and evaluate from one thread (evaluations themselves may complete on an executor's thread).
 */
public final class Graph {

    private final OpGraph.Builder builder = new OpGraph.Builder();
    private final Map<Integer, TensorValue> values = new HashMap<>();
    private int leafCount;

    public Graph() {}

    // ---- leaves --------------------------------------------------------------------------------------------------

    /** An f32 leaf holding a copy of {@code data}; differentiable. */
    public Tensor tensor(float[] data, Shape shape) {
        return bind(HostTensor.ofFloats(data, shape));
    }

    /** A leaf of floating {@code dtype} (f32, f16, bf16, f64) holding {@code data} rounded to it; differentiable. */
    public Tensor tensor(float[] data, Shape shape, DType dtype) {
        double[] d = new double[data.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = data[i];
        }
        return tensor(d, shape, dtype);
    }

    /** A leaf of floating {@code dtype} holding {@code data} rounded to it; differentiable. */
    public Tensor tensor(double[] data, Shape shape, DType dtype) {
        return bind(HostTensor.of(data, shape, dtype));
    }

    /** An I32 leaf (token ids, positions); not differentiable. */
    public Tensor indices(int[] ids, Shape shape) {
        return bind(HostTensor.ofInts(ids, shape));
    }

    /** A weight [rows, cols] in its storage format, used in place by matmul/get_rows; a constant for autograd. */
    public Tensor weight(WeightRows rows) {
        return bind(WeightTensor.of(rows));
    }

    /** A leaf bound later with {@link #set}. */
    public Tensor input(String label, Shape shape, DType dtype) {
        return apply(new Op.Input(label, new TensorType(shape, dtype)));
    }

    /** A tensor filled with {@code value}. */
    public Tensor full(double value, Shape shape, DType dtype) {
        return apply(new Op.Full(value, new TensorType(shape, dtype)));
    }

    /** A scalar constant. */
    public Tensor scalar(double value, DType dtype) {
        return full(value, Shape.SCALAR, dtype);
    }

    /** The additive causal mask [queries, keys] of {@link Op.CausalMask}. */
    public Tensor causalMask(int queries, int keys, int window, DType dtype) {
        return apply(new Op.CausalMask(queries, keys, window, dtype));
    }

    private Tensor bind(TensorValue value) {
        Tensor t = apply(new Op.Input("leaf" + leafCount++, value.type()));
        values.put(t.id(), value);
        return t;
    }

    /** Replaces the value of input leaf {@code leaf}; its type must stay the same. */
    public void set(Tensor leaf, TensorValue value) {
        own(leaf);
        Node n = builder.node(leaf.id());
        if (!(n.op() instanceof Op.Input)) {
            throw new IllegalArgumentException("tensor %" + leaf.id() + " is a " + n.op().name()
                    + ", not an input leaf");
        }
        if (!value.type().equals(n.type())) {
            throw new IllegalArgumentException("input %" + leaf.id() + ": expected " + n.type() + ", found "
                    + value.type());
        }
        values.put(leaf.id(), value);
    }

    /** The value bound to input leaf {@code leaf}, or null. */
    public TensorValue value(Tensor leaf) {
        own(leaf);
        return values.get(leaf.id());
    }

    // ---- building ------------------------------------------------------------------------------------------------

    /** Appends {@code op} over {@code inputs} (all of this graph); its type is inferred and checked here. */
    public Tensor apply(Op op, Tensor... inputs) {
        int[] ids = new int[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            own(inputs[i]);
            ids[i] = inputs[i].id();
        }
        return new Tensor(this, builder.add(op, ids));
    }

    /** The handle of node {@code id}. */
    public Tensor tensor(int id) {
        if (id < 0 || id >= builder.size()) {
            throw new IllegalArgumentException("no node %" + id + " (graph has " + builder.size() + ")");
        }
        return new Tensor(this, id);
    }

    public Node node(int id) {
        return builder.node(id);
    }

    public int size() {
        return builder.size();
    }

    void own(Tensor t) {
        if (t.graph() != this) {
            throw new IllegalArgumentException("tensor %" + t.id() + " belongs to another graph");
        }
    }

    // ---- execution -----------------------------------------------------------------------------------------------

    /** The nodes {@code outputs} need, as an IR graph (renumbered densely). */
    public OpGraph toOpGraph(Tensor... outputs) {
        return snapshot(outputs).graph();
    }

    private OpGraph.Pruned snapshot(Tensor... outputs) {
        List<Integer> ids = new ArrayList<>(outputs.length);
        for (Tensor t : outputs) {
            own(t);
            ids.add(t.id());
        }
        return builder.build(ids).prune();
    }

    /**
     * Computes {@code outputs} together: every node is computed once per evaluation, whichever outputs share it.
     * Nothing is cached between evaluations, since leaf values may change.
     */
    public CompletionStage<Evaluation> evaluateAsync(GraphExecutor executor, Tensor... outputs) {
        OpGraph.Pruned pruned = snapshot(outputs);
        Map<Integer, TensorValue> inputs = new HashMap<>();
        int[] mapping = pruned.mapping();
        for (int old = 0; old < mapping.length; old++) {
            if (mapping[old] >= 0 && builder.node(old).op() instanceof Op.Input in) {
                TensorValue v = values.get(old);
                if (v == null) {
                    throw new IllegalStateException("input %" + old + " '" + in.label() + "' " + in.type()
                            + " has no value: bind it with Graph.set before evaluating");
                }
                inputs.put(mapping[old], v);
            }
        }
        int[] outIds = new int[outputs.length];
        for (int i = 0; i < outputs.length; i++) {
            outIds[i] = outputs[i].id();
        }
        return executor.execute(pruned.graph(), inputs).thenApply(results -> {
            Map<Integer, HostTensor> byId = new LinkedHashMap<>();
            for (int i = 0; i < outIds.length; i++) {
                byId.put(outIds[i], results.get(i));
            }
            return new Evaluation(byId);
        });
    }

    /** {@link #evaluateAsync}, waited for; failures are rethrown unwrapped. */
    public Evaluation evaluate(GraphExecutor executor, Tensor... outputs) {
        try {
            return evaluateAsync(executor, outputs).toCompletableFuture().join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw e;
        }
    }

    /** Every node, one per line (see {@link OpGraph#dump()}). */
    public String dump() {
        return builder.build(List.of()).dump();
    }

    /** Every node as Graphviz source (see {@link aether.scheduler.compile.GraphDump#dot}). */
    public String dot() {
        return aether.scheduler.compile.GraphDump.dot(builder.build(List.of()));
    }
}
