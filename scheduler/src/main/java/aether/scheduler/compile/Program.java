package aether.scheduler.compile;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the compiler works on: an {@link OpGraph} plus the values of the {@code Input} nodes that are compile-time
 * constants (weights, fixed tables). Every other {@code Input} is bound at run time. The IR itself carries no tensor
 * data, so constant data lives here, keyed by node id.
 *
 * @param graph     the graph
 * @param constants values of constant {@code Input} nodes, by node id; each type equals its node's type
 */
public record Program(OpGraph graph, Map<Integer, TensorValue> constants) {

    public Program {
        constants = Map.copyOf(constants);
        for (Map.Entry<Integer, TensorValue> e : constants.entrySet()) {
            int id = e.getKey();
            if (id < 0 || id >= graph.size() || !(graph.node(id).op() instanceof Op.Input)) {
                throw new IllegalArgumentException("program: constant %" + id + " is not an input node of the graph");
            }
            if (!e.getValue().type().equals(graph.node(id).type())) {
                throw new IllegalArgumentException("program: constant %" + id + " has type " + e.getValue().type()
                        + " but the node is " + graph.node(id).type());
            }
        }
    }

    /** A graph without constants. */
    public static Program of(OpGraph graph) {
        return new Program(graph, Map.of());
    }

    /**
     * The nodes of {@code g} that {@code outputs} need, with the current values of the {@code constant} leaves as
     * compile-time constants. Returns the program and the mapping from {@code g}'s node ids to the program's.
     */
    public static Snapshot from(Graph g, List<Tensor> constant, Tensor... outputs) {
        List<Node> nodes = new ArrayList<>(g.size());
        for (int i = 0; i < g.size(); i++) {
            nodes.add(g.node(i));
        }
        List<Integer> outs = new ArrayList<>(outputs.length);
        for (Tensor t : outputs) {
            requireOwned(g, t);
            outs.add(t.id());
        }
        OpGraph.Pruned pruned = new OpGraph(nodes, outs).prune();
        Map<Integer, TensorValue> constants = new HashMap<>();
        for (Tensor c : constant) {
            requireOwned(g, c);
            TensorValue v = g.value(c);
            if (v == null) {
                throw new IllegalArgumentException("program: constant %" + c.id() + " (" + c.node().op().name()
                        + ") has no bound value (expected: a leaf made by Graph.tensor/weight/indices or bound with set)");
            }
            int mapped = pruned.mapping()[c.id()];
            if (mapped >= 0) {
                constants.put(mapped, v);
            }
        }
        return new Snapshot(new Program(pruned.graph(), constants), pruned.mapping());
    }

    private static void requireOwned(Graph g, Tensor t) {
        if (t.graph() != g) {
            throw new IllegalArgumentException("program: tensor %" + t.id() + " belongs to another graph");
        }
    }

    /** Result of {@link #from}: {@code mapping[graphId]} is the program's node id, or -1 when not needed. */
    public record Snapshot(Program program, int[] mapping) {}

    public boolean isConstant(int id) {
        return constants.containsKey(id);
    }

    public int size() {
        return graph.size();
    }

    /** Ids of the {@code Input} nodes that are bound at run time (not constants), in id order. */
    public List<Integer> runtimeInputs() {
        List<Integer> ids = new ArrayList<>();
        for (Node n : graph.nodes()) {
            if (n.op() instanceof Op.Input && !constants.containsKey(n.id())) {
                ids.add(n.id());
            }
        }
        return ids;
    }
}
