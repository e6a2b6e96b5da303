package aether.runtime.ir;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * An immutable DAG of ops in topological order: node i has id i and reads only nodes with smaller ids. {@code outputs}
 * are the ids the caller wants back. Built with {@link Builder}, which infers and checks every node's type; the
 * canonical constructor re-checks ids, input order and types, so a pass that rewrites a graph cannot produce a broken
 * one silently.
 */
public record OpGraph(List<Node> nodes, List<Integer> outputs) {

    public OpGraph {
        nodes = List.copyOf(nodes);
        outputs = List.copyOf(outputs);
        List<TensorType> in = new ArrayList<>();
        for (int i = 0; i < nodes.size(); i++) {
            Node n = nodes.get(i);
            if (n.id() != i) {
                throw new IllegalArgumentException("graph: node at index " + i + " has id " + n.id()
                        + " (expected: ids equal indices)");
            }
            in.clear();
            for (int input : n.inputs()) {
                if (input < 0 || input >= i) {
                    throw new IllegalArgumentException("graph: node " + i + " (" + n.op().name() + ") reads node "
                            + input + " (expected: 0.." + (i - 1) + ", topological order)");
                }
                in.add(nodes.get(input).type());
            }
            TensorType inferred = TypeInference.infer(n.op(), in);
            if (!inferred.equals(n.type())) {
                throw new IllegalArgumentException("graph: node " + i + " (" + n.op().name() + ") declares type "
                        + n.type() + " but its op infers " + inferred);
            }
        }
        for (int o : outputs) {
            if (o < 0 || o >= nodes.size()) {
                throw new IllegalArgumentException("graph: output " + o + " is not a node id (expected: 0.."
                        + (nodes.size() - 1) + ")");
            }
        }
    }

    public Node node(int id) {
        return nodes.get(id);
    }

    public int size() {
        return nodes.size();
    }

    /**
     * The nodes the outputs depend on, renumbered densely in the same order. {@code mapping[oldId]} is the new id or -1
     * when the node was dropped.
     */
    public Pruned prune() {
        boolean[] live = new boolean[nodes.size()];
        for (int o : outputs) {
            live[o] = true;
        }
        for (int i = nodes.size() - 1; i >= 0; i--) {
            if (live[i]) {
                for (int input : nodes.get(i).inputs()) {
                    live[input] = true;
                }
            }
        }
        int[] mapping = new int[nodes.size()];
        Arrays.fill(mapping, -1);
        List<Node> kept = new ArrayList<>();
        for (int i = 0; i < nodes.size(); i++) {
            if (live[i]) {
                Node n = nodes.get(i);
                List<Integer> ins = new ArrayList<>(n.inputs().size());
                for (int input : n.inputs()) {
                    ins.add(mapping[input]);
                }
                mapping[i] = kept.size();
                kept.add(new Node(kept.size(), n.op(), ins, n.type()));
            }
        }
        List<Integer> outs = new ArrayList<>(outputs.size());
        for (int o : outputs) {
            outs.add(mapping[o]);
        }
        return new Pruned(new OpGraph(kept, outs), mapping);
    }

    /** Result of {@link #prune()}. */
    public record Pruned(OpGraph graph, int[] mapping) {}

    /** One line per node: {@code %id = op(attributes)(inputs) : dtype[shape]}, then the outputs. */
    public String dump() {
        StringBuilder sb = new StringBuilder();
        for (Node n : nodes) {
            sb.append('%').append(n.id()).append(" = ").append(n.op().name());
            String attrs = attributes(n.op());
            if (!attrs.isEmpty()) {
                sb.append('{').append(attrs).append('}');
            }
            sb.append('(')
                    .append(n.inputs().stream().map(i -> "%" + i).collect(Collectors.joining(", ")))
                    .append(") : ").append(n.type()).append('\n');
        }
        sb.append("outputs: ").append(outputs.stream().map(i -> "%" + i).collect(Collectors.joining(", ")))
                .append('\n');
        return sb.toString();
    }

    private static String attributes(Op op) {
        String s = op.toString();   // records print as Name[a=1, b=2]
        int open = s.indexOf('[');
        return open < 0 ? "" : s.substring(open + 1, s.length() - 1);
    }

    @Override
    public String toString() {
        return dump();
    }

    /** Appends nodes, inferring each type; ids are assigned in order. Not thread-safe. */
    public static final class Builder {
        private final List<Node> nodes = new ArrayList<>();

        public Builder() {}

        /** Starts from the nodes of {@code graph} (for passes that append). */
        public Builder(OpGraph graph) {
            nodes.addAll(graph.nodes());
        }

        /** Adds {@code op} reading {@code inputs}; returns the new node's id. */
        public int add(Op op, int... inputs) {
            List<Integer> ids = new ArrayList<>(inputs.length);
            List<TensorType> types = new ArrayList<>(inputs.length);
            for (int input : inputs) {
                if (input < 0 || input >= nodes.size()) {
                    throw new IllegalArgumentException(op.name() + ": input id " + input + " is not a node (expected: 0.."
                            + (nodes.size() - 1) + ")");
                }
                ids.add(input);
                types.add(nodes.get(input).type());
            }
            TensorType type = TypeInference.infer(op, types);
            nodes.add(new Node(nodes.size(), op, ids, type));
            return nodes.size() - 1;
        }

        public Node node(int id) {
            return nodes.get(id);
        }

        public int size() {
            return nodes.size();
        }

        public OpGraph build(List<Integer> outputs) {
            return new OpGraph(nodes, outputs);
        }
    }
}
