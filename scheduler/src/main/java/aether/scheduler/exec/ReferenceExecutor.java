package aether.scheduler.exec;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;

/**
 * The straightforward CPU executor: one node after another, each op a plain loop accumulating in double. With {@link
 * Precision#AS_DECLARED} every result is rounded to its node's dtype (an f32 graph computes like a float32 device with
 * exact accumulation; f16/bf16 values are rounded to those types); with {@link Precision#FLOAT64} nothing is rounded, so
 * an f32 graph can be gradient-checked as if it were f64. Quantized weights are dequantized one row at a time. Each node
 * is computed once per execution and its array dropped after its last reader. Stateless and thread-safe.
 */
public final class ReferenceExecutor implements GraphExecutor {

    public enum Precision { AS_DECLARED, FLOAT64 }

    private final Executor executor;
    private final Precision precision;

    /** Runs on the calling thread (the returned stage is already complete), rounding to declared dtypes. */
    public ReferenceExecutor() {
        this(Runnable::run, Precision.AS_DECLARED);
    }

    public ReferenceExecutor(Precision precision) {
        this(Runnable::run, precision);
    }

    /** Runs each graph as one task on {@code executor}. */
    public ReferenceExecutor(Executor executor, Precision precision) {
        this.executor = Objects.requireNonNull(executor, "executor");
        this.precision = Objects.requireNonNull(precision, "precision");
    }

    public Precision precision() {
        return precision;
    }

    @Override
    public CompletionStage<List<HostTensor>> execute(OpGraph graph, Map<Integer, ? extends TensorValue> inputs) {
        Objects.requireNonNull(graph, "graph");
        Objects.requireNonNull(inputs, "inputs");
        return CompletableFuture.supplyAsync(() -> run(graph, inputs), executor);
    }

    private List<HostTensor> run(OpGraph graph, Map<Integer, ? extends TensorValue> inputs) {
        int n = graph.size();
        int[] lastUse = new int[n];
        boolean[] needed = new boolean[n];
        for (int o : graph.outputs()) {
            needed[o] = true;
            lastUse[o] = Integer.MAX_VALUE;
        }
        for (int i = n - 1; i >= 0; i--) {
            if (needed[i]) {
                for (int input : graph.node(i).inputs()) {
                    needed[input] = true;
                    lastUse[input] = Math.max(lastUse[input], i);
                }
            }
        }
        double[][] dense = new double[n][];
        WeightRows[] weights = new WeightRows[n];
        for (int i = 0; i < n; i++) {
            if (!needed[i]) {
                continue;
            }
            Node node = graph.node(i);
            if (node.op() instanceof Op.Input in) {
                TensorValue v = inputs.get(i);
                if (v == null) {
                    throw new IllegalArgumentException("input %" + i + " '" + in.label() + "' " + node.type()
                            + " is not bound");
                }
                if (!v.type().equals(node.type())) {
                    throw new IllegalArgumentException("input %" + i + " '" + in.label() + "': expected "
                            + node.type() + ", found " + v.type());
                }
                switch (v) {
                    case HostTensor h -> dense[i] = h.data();
                    case WeightTensor w -> weights[i] = w.rows();
                    case CacheTensor c -> dense[i] = c.values();   // updated in place by kv_store
                    default -> throw new IllegalArgumentException("input %" + i + " '" + in.label()
                            + "': the reference executor reads host tensors and weight rows, found "
                            + v.getClass().getSimpleName());
                }
            } else {
                materializeWeightOperands(node, dense, weights);
                dense[i] = evaluate(graph, node, dense, weights);
                if (precision == Precision.AS_DECLARED && rounds(node.op())) {
                    Rounding.round(dense[i], node.dtype());
                }
            }
            for (int input : node.inputs()) {
                if (lastUse[input] == i) {
                    dense[input] = null;
                    weights[input] = null;
                }
            }
        }
        List<HostTensor> out = new ArrayList<>(graph.outputs().size());
        for (int o : graph.outputs()) {
            if (dense[o] == null) {
                throw new IllegalArgumentException("output %" + o + " is a weight bound as rows; only computed values"
                        + " are returned");
            }
            out.add(HostTensor.wrap(graph.node(o).type(), dense[o]));
        }
        return out;
    }

    /**
     * matmul's right operand and get_rows' table read weights row by row; any other use of a weight bound as rows
     * (possible for f32/f16/bf16 weights only: inference keeps block types out of other ops) expands it once.
     */
    private static void materializeWeightOperands(Node node, double[][] dense, WeightRows[] weights) {
        for (int k = 0; k < node.inputs().size(); k++) {
            int in = node.inputs().get(k);
            boolean rowWise = (node.op() instanceof Op.MatMul && k == 1) || (node.op() instanceof Op.GetRows && k == 0);
            if (weights[in] != null && dense[in] == null && !rowWise) {
                WeightRows w = weights[in];
                double[] d = new double[Math.multiplyExact(w.rows(), w.cols())];
                float[] row = new float[w.cols()];
                for (int r = 0; r < w.rows(); r++) {
                    w.row(r, row);
                    for (int c = 0; c < row.length; c++) {
                        d[r * row.length + c] = row[c];
                    }
                }
                dense[in] = d;
            }
        }
    }

    /** Layout ops move values that are already rounded; arithmetic rounds. */
    private static boolean rounds(Op op) {
        return !(op instanceof Op.KvStore || op instanceof Op.Reshape || op instanceof Op.Permute || op instanceof Op.Expand
                || op instanceof Op.Slice || op instanceof Op.Concat || op instanceof Op.Pad);
    }

    private static double[] evaluate(OpGraph g, Node node, double[][] dense, WeightRows[] weights) {
        List<Integer> in = node.inputs();
        Shape out = node.shape();
        return switch (node.op()) {
            case Op.Input i -> throw new IllegalStateException("inputs are bound, not evaluated");
            case Op.Full f -> Kernels.full(out, f.value());
            case Op.CausalMask m -> Kernels.causalMask(m.queries(), m.keys(), m.window());
            case Op.Unary u -> Kernels.unary(u.fn(), dense[in.get(0)]);
            case Op.Pow p -> Kernels.pow(dense[in.get(0)], p.exponent());
            case Op.Clamp c -> Kernels.clamp(dense[in.get(0)], c.min(), c.max());
            case Op.Scale s -> Kernels.scale(dense[in.get(0)], s.factor());
            case Op.Binary b -> Kernels.binary(b.fn(), dense[in.get(0)], shape(g, in, 0), dense[in.get(1)],
                    shape(g, in, 1), out);
            case Op.Cast c -> dense[in.get(0)].clone();
            case Op.Reduce r -> Kernels.reduce(r.fn(), dense[in.get(0)], shape(g, in, 0), r.axis());
            case Op.ArgMax a -> Kernels.argmax(dense[in.get(0)], shape(g, in, 0), a.axis());
            case Op.MatMul m -> weights[in.get(1)] != null
                    ? Kernels.matmulRows(dense[in.get(0)], shape(g, in, 0), weights[in.get(1)], m.transposeB(), out)
                    : Kernels.matmul(dense[in.get(0)], shape(g, in, 0), dense[in.get(1)], shape(g, in, 1),
                            m.transposeB(), out);
            case Op.Softmax s -> Kernels.softmax(dense[in.get(0)], out,
                    in.size() > 1 ? Kernels.expand(dense[in.get(1)], shape(g, in, 1), out) : null,
                    s.scale(), s.softCap());
            case Op.RmsNorm r -> Kernels.rmsNorm(dense[in.get(0)], out.dim(-1), r.eps());
            case Op.LayerNorm l -> Kernels.layerNorm(dense[in.get(0)], out.dim(-1), l.eps());
            case Op.Rope r -> Kernels.rope(dense[in.get(0)], out, dense[in.get(1)],
                    in.size() > 2 ? dense[in.get(2)] : null, r);
            case Op.GetRows gr -> weights[in.get(0)] != null
                    ? Kernels.getRows(weights[in.get(0)], dense[in.get(1)], node.id())
                    : Kernels.getRows(dense[in.get(0)], shape(g, in, 0), dense[in.get(1)], node.id());
            case Op.ScatterAddRows s -> Kernels.scatterAddRows(dense[in.get(0)], dense[in.get(1)], s.rows(),
                    out.dim(1), node.id());
            case Op.Attention a -> Kernels.attention(dense[in.get(0)], shape(g, in, 0), dense[in.get(1)],
                    shape(g, in, 1), dense[in.get(2)], shape(g, in, 2), a.scale(), a.window(), a.softCap());
            case Op.KvStore k -> {
                double[] cache = dense[in.get(0)];
                int width = out.dim(1);
                double[] rows = dense[in.get(1)];
                double[] slots = dense[in.get(2)];
                for (int t = 0; t < slots.length; t++) {
                    CacheTensor.store(cache, width, Kernels.rowIndex(slots[t], out.dim(0), node.id()), rows, t * width,
                            node.dtype());
                }
                yield cache;
            }
            case Op.PagedAttention a -> Kernels.pagedAttention(dense[in.get(0)], shape(g, in, 0), dense[in.get(1)],
                    dense[in.get(2)], shape(g, in, 2), dense[in.get(3)], dense[in.get(4)], shape(g, in, 4), a,
                    node.id());
            case Op.Reshape r -> dense[in.get(0)];
            case Op.Permute p -> Kernels.permute(dense[in.get(0)], shape(g, in, 0), p.axes());
            case Op.Expand e -> Kernels.expand(dense[in.get(0)], shape(g, in, 0), out);
            case Op.Concat c -> {
                double[][] parts = new double[in.size()][];
                Shape[] shapes = new Shape[in.size()];
                for (int i = 0; i < parts.length; i++) {
                    parts[i] = dense[in.get(i)];
                    shapes[i] = shape(g, in, i);
                }
                yield Kernels.concat(parts, shapes, c.axis(), out);
            }
            case Op.Slice s -> Kernels.slice(dense[in.get(0)], shape(g, in, 0), s.axis(), s.start(), out);
            case Op.Pad p -> Kernels.pad(dense[in.get(0)], shape(g, in, 0), p.axis(), p.before(), out);
        };
    }

    private static Shape shape(OpGraph g, List<Integer> in, int i) {
        return g.node(in.get(i)).shape();
    }

}
