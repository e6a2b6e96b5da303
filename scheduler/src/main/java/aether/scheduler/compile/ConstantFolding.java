package aether.scheduler.compile;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.exec.TensorValue;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Evaluates at compile time every computation whose leaves are all constants ({@code full} and {@code causal_mask}
 * nodes, and constant inputs holding host tensors), using the {@link ReferenceExecutor} with declared precision, so the
 * folded value is bit-identical to what the unfolded graph computes there. Only the frontier is materialized: a constant
 * node read by a non-constant node, or an output. A uniform result becomes a {@code full} node; any other becomes a
 * constant input, unless it has more than {@code maxElements} elements (folding {@code expand(scalar)} into a huge
 * array would trade a cheap op for memory), in which case the node is kept and computed at run time.
 */
public final class ConstantFolding implements Pass {

    /** Default limit on the element count of a folded non-uniform constant (4 Mi elements). */
    public static final long DEFAULT_MAX_ELEMENTS = 1L << 22;

    private final long maxElements;

    public ConstantFolding() {
        this(DEFAULT_MAX_ELEMENTS);
    }

    public ConstantFolding(long maxElements) {
        if (maxElements < 0) {
            throw new IllegalArgumentException("constant folding: maxElements must be >= 0 (found " + maxElements
                    + ")");
        }
        this.maxElements = maxElements;
    }

    @Override
    public String name() {
        return "constant-folding";
    }

    @Override
    public Rewrite run(Program program) {
        OpGraph g = program.graph();
        int n = g.size();
        boolean[] constant = new boolean[n];
        for (Node node : g.nodes()) {
            constant[node.id()] = switch (node.op()) {
                case Op.Input in -> program.constants().get(node.id()) instanceof HostTensor;
                case Op.Full f -> true;
                case Op.CausalMask m -> true;
                default -> {
                    boolean all = true;
                    for (int input : node.inputs()) {
                        all &= constant[input];
                    }
                    yield all;
                }
            };
        }
        boolean[] frontier = new boolean[n];
        for (Node node : g.nodes()) {
            if (!constant[node.id()]) {
                for (int input : node.inputs()) {
                    frontier[input] = true;
                }
            }
        }
        for (int o : g.outputs()) {
            frontier[o] = true;
        }
        List<Integer> targets = new ArrayList<>();
        for (Node node : g.nodes()) {
            boolean leaf = node.op() instanceof Op.Input || node.op() instanceof Op.Full
                    || node.op() instanceof Op.CausalMask;
            if (constant[node.id()] && frontier[node.id()] && !leaf) {
                targets.add(node.id());
            }
        }
        if (targets.isEmpty()) {
            return Rewrite.identity(program);
        }
        Map<Integer, HostTensor> folded = evaluate(program, targets);
        Rewriter rw = new Rewriter(program);
        for (Node node : g.nodes()) {
            HostTensor value = folded.get(node.id());
            if (value == null) {
                rw.copy(node);
            } else if (uniform(value)) {
                rw.replace(node.id(), rw.add(new Op.Full(value.get(0), node.type())));
            } else if (value.size() <= maxElements) {
                rw.replace(node.id(), rw.addConstant("const%" + node.id(), value));
            } else {
                rw.copy(node);
            }
        }
        return rw.finish();
    }

    private static Map<Integer, HostTensor> evaluate(Program program, List<Integer> targets) {
        OpGraph g = program.graph();
        OpGraph sub = new OpGraph(g.nodes(), targets);
        Map<Integer, TensorValue> inputs = new HashMap<>();
        for (Map.Entry<Integer, TensorValue> e : program.constants().entrySet()) {
            if (e.getValue() instanceof HostTensor) {
                inputs.put(e.getKey(), e.getValue());
            }
        }
        // The executor computes only what the targets need, so unbound run-time inputs are never touched.
        List<HostTensor> values = new ReferenceExecutor().executeNow(sub, inputs);
        Map<Integer, HostTensor> byId = new HashMap<>();
        for (int i = 0; i < targets.size(); i++) {
            byId.put(targets.get(i), values.get(i));
        }
        return byId;
    }

    /** Non-empty and every element the same bits (so {@code -0.0} and {@code 0.0}, or NaNs, are not mixed up). */
    private static boolean uniform(HostTensor v) {
        if (v.size() == 0) {
            return false;
        }
        long first = Double.doubleToRawLongBits(v.get(0));
        for (int i = 1; i < v.size(); i++) {
            if (Double.doubleToRawLongBits(v.get(i)) != first) {
                return false;
            }
        }
        return true;
    }
}
