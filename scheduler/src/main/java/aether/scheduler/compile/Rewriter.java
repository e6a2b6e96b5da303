package aether.scheduler.compile;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.TensorType;
import aether.scheduler.exec.TensorValue;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Shared plumbing of the rewriting passes: walks the old graph in order while building the new one, remembering where
 * each old node went. A pass either {@link #copy}s a node (its inputs remapped), {@link #replace}s it by a node already
 * in the new graph, or {@link #add}s new nodes. Constants travel with their nodes.
 */
final class Rewriter {

    private final Program old;
    private final OpGraph.Builder builder = new OpGraph.Builder();
    private final int[] mapping;
    private final Map<Integer, TensorValue> constants = new HashMap<>();

    Rewriter(Program old) {
        this.old = old;
        this.mapping = new int[old.size()];
        Arrays.fill(mapping, -1);
    }

    /** The new id of old node {@code oldId} (which must have been visited). */
    int mapped(int oldId) {
        int m = mapping[oldId];
        if (m < 0) {
            throw new IllegalStateException("rewriter: old node %" + oldId + " has not been emitted yet");
        }
        return m;
    }

    /** The new node {@code newId}. */
    Node node(int newId) {
        return builder.node(newId);
    }

    TensorType type(int newId) {
        return builder.node(newId).type();
    }

    /** True when new node {@code newId} is a constant input. */
    boolean isConstant(int newId) {
        return constants.containsKey(newId);
    }

    TensorValue constant(int newId) {
        return constants.get(newId);
    }

    /** Copies old node {@code n} with its inputs remapped (constants keep their values); returns the new id. */
    int copy(Node n) {
        int id = builder.add(n.op(), mappedInputs(n));
        TensorValue c = old.constants().get(n.id());
        if (c != null) {
            constants.put(id, c);
        }
        mapping[n.id()] = id;
        return id;
    }

    /** Old node {@code oldId} is computed by new node {@code newId}; the caller guarantees identical values. */
    void replace(int oldId, int newId) {
        Node was = old.graph().node(oldId);
        if (!builder.node(newId).type().equals(was.type())) {
            throw new IllegalStateException("rewriter: %" + oldId + " " + was.type() + " replaced by %" + newId + " "
                    + builder.node(newId).type());
        }
        mapping[oldId] = newId;
    }

    /** Appends a new node; returns its id. */
    int add(Op op, int... newInputs) {
        return builder.add(op, newInputs);
    }

    /** Appends a constant input node holding {@code value}; returns its id. */
    int addConstant(String label, TensorValue value) {
        int id = builder.add(new Op.Input(label, value.type()));
        constants.put(id, value);
        return id;
    }

    int[] mappedInputs(Node n) {
        int[] in = new int[n.inputs().size()];
        for (int i = 0; i < in.length; i++) {
            in[i] = mapped(n.input(i));
        }
        return in;
    }

    Rewrite finish() {
        List<Integer> outs = new ArrayList<>(old.graph().outputs().size());
        for (int o : old.graph().outputs()) {
            outs.add(mapped(o));
        }
        return new Rewrite(new Program(builder.build(outs), constants), mapping);
    }
}
