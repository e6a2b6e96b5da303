package aether.runtime.ir;

import java.util.List;

/**
 * One operation in an {@link OpGraph}: its id (its index in the graph), the op, the ids of its inputs (all smaller than
 * its own id) and its inferred type.
 */
public record Node(int id, Op op, List<Integer> inputs, TensorType type) {

    public Node {
        inputs = List.copyOf(inputs);
        if (op == null || type == null) {
            throw new IllegalArgumentException("node " + id + ": op and type are required");
        }
    }

    public Shape shape() {
        return type.shape();
    }

    public DType dtype() {
        return type.dtype();
    }

    public int input(int i) {
        return inputs.get(i);
    }
}
