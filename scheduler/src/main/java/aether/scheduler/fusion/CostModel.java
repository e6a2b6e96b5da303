package aether.scheduler.fusion;

import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import java.util.Collection;
import java.util.HashSet;
import java.util.Set;

/**
 * Estimated time of running a set of nodes as one kernel: bytes moved to and from memory (every external operand read
 * once, the root written once) over a bandwidth, plus a fixed overhead per dispatch, plus per-element work. Elementwise
 * members are evaluated once per element of the group's root, so a member with a smaller (broadcast) shape is
 * recomputed; that is what makes some fusions lose: {@code x[1024, 1024] + exp(b[1024])} recomputes the exp a million
 * times instead of 1024.
 *
 * @param bytesPerNs        sustained memory bandwidth in bytes per nanosecond (10 = 10 GB/s)
 * @param dispatchNs        fixed cost of one kernel dispatch (about 2 µs for a CPU task, more for a GPU launch)
 * @param arithmeticNs      cost per element of add, mul, scale, neg, relu, clamp, cast and friends
 * @param transcendentalNs  cost per element of exp, log, tanh, sqrt, sigmoid, gelu, silu, pow
 */
public record CostModel(double bytesPerNs, double dispatchNs, double arithmeticNs, double transcendentalNs) {

    public CostModel {
        if (!(bytesPerNs > 0) || !(dispatchNs >= 0) || !(arithmeticNs >= 0) || !(transcendentalNs >= 0)) {
            throw new IllegalArgumentException("cost model: bandwidth must be > 0 and costs >= 0 (found bytesPerNs="
                    + bytesPerNs + ", dispatchNs=" + dispatchNs + ", arithmeticNs=" + arithmeticNs
                    + ", transcendentalNs=" + transcendentalNs + ")");
        }
    }

    /** A single CPU core: 10 GB/s, 2 µs per dispatch, 0.25 ns per arithmetic element, 5 ns per transcendental. */
    public static CostModel cpu() {
        return new CostModel(10, 2000, 0.25, 5);
    }

    /** Bytes of a node's value. */
    public static long bytes(Node n) {
        DType t = n.dtype();
        return t.ggml().bytesFor(n.shape().size());
    }

    /** Estimated nanoseconds to run {@code members} (all of {@code graph}) as one kernel writing {@code root}. */
    public double estimate(OpGraph graph, Collection<Integer> members, int root) {
        Set<Integer> in = new HashSet<>(members);
        Set<Integer> external = new HashSet<>();
        double work = 0;
        long domain = graph.node(root).shape().size();
        for (int m : members) {
            Node n = graph.node(m);
            for (int input : n.inputs()) {
                if (!in.contains(input)) {
                    external.add(input);
                }
            }
            work += work(graph, n, members.size() == 1 ? n.shape().size() : domain);
        }
        long bytes = bytes(graph.node(root));
        for (int e : external) {
            bytes += bytes(graph.node(e));
        }
        return bytes / bytesPerNs + dispatchNs + work;
    }

    /** Bytes {@link #estimate} counts as moved for {@code members}. */
    public long bytesMoved(OpGraph graph, Collection<Integer> members, int root) {
        Set<Integer> in = new HashSet<>(members);
        Set<Integer> external = new HashSet<>();
        for (int m : members) {
            for (int input : graph.node(m).inputs()) {
                if (!in.contains(input)) {
                    external.add(input);
                }
            }
        }
        long bytes = bytes(graph.node(root));
        for (int e : external) {
            bytes += bytes(graph.node(e));
        }
        return bytes;
    }

    private double work(OpGraph graph, Node n, long elements) {
        return switch (n.op()) {
            case Op.MatMul m -> {
                Node a = graph.node(n.input(0));
                yield (double) n.shape().size() * a.shape().dim(-1) * 2 * arithmeticNs;
            }
            case Op.Softmax s -> n.shape().size() * (transcendentalNs + 4 * arithmeticNs);
            case Op.RmsNorm r -> n.shape().size() * 3 * arithmeticNs;
            case Op.LayerNorm l -> n.shape().size() * 5 * arithmeticNs;
            case Op.Unary u -> elements * switch (u.fn()) {
                case NEG, ABS, RELU, SIGN, STEP -> arithmeticNs;
                default -> transcendentalNs;
            };
            case Op.Pow p -> elements * transcendentalNs;
            case Op.Binary b -> elements * (b.fn() == Op.BinaryFn.POW ? transcendentalNs : arithmeticNs);
            case Op.Scale s -> elements * arithmeticNs;
            case Op.Clamp c -> elements * arithmeticNs;
            case Op.Cast c -> elements * arithmeticNs;
            default -> n.shape().size() * arithmeticNs;
        };
    }
}
