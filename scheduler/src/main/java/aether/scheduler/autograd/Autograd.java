package aether.scheduler.autograd;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The reverse sweep. Walks node ids downward from the output (ids are a topological order), skips nodes that do not
 * lead to a differentiable leaf, and sums each node's vector-Jacobian products into its inputs' gradients.
 */
public final class Autograd {

    private Autograd() {}

    /**
     * Appends the gradient graph of scalar {@code y} (one element, floating) with respect to every floating leaf.
     *
     * @throws IllegalArgumentException when y is not a one-element floating tensor
     */
    public static Gradients backward(Tensor y) {
        if (y.shape().size() != 1 || !y.dtype().isFloat()) {
            throw new IllegalArgumentException("backward(" + y.node().type() + "): reverse mode starts from a scalar"
                    + " (one element) floating output; reduce it first, e.g. sumAll()");
        }
        Graph g = y.graph();
        Set<Integer> leaves = new HashSet<>();
        for (int id = 0; id <= y.id(); id++) {
            if (g.node(id).op() instanceof Op.Input && g.node(id).dtype().isFloat()) {
                leaves.add(id);
            }
        }
        Map<Integer, Tensor> grads = reverse(y, g.full(1, y.shape(), y.dtype()), leaves, -1);
        return new Gradients(y, grads);
    }

    /**
     * Propagates {@code seed} (d loss / d root) back from {@code root}. Nodes in {@code wrt} collect gradients and stop
     * the sweep; other nodes take part when their id is above {@code floor} and an input leads to {@code wrt}.
     *
     * @return gradients by node id for every node reached (including wrt members and intermediates)
     */
    static Map<Integer, Tensor> reverse(Tensor root, Tensor seed, Set<Integer> wrt, int floor) {
        Graph g = root.graph();
        int n = root.id() + 1;
        boolean[] relevant = new boolean[n];
        for (int id = 0; id < n; id++) {
            Node node = g.node(id);
            if (wrt.contains(id)) {
                relevant[id] = true;
            } else if (id > floor && Vjp.differentiable(node.op()) && node.dtype().isFloat()) {
                for (int in : node.inputs()) {
                    relevant[id] |= relevant[in];
                }
            }
        }
        Map<Integer, Tensor> grads = new HashMap<>();
        if (!relevant[root.id()]) {
            return grads;
        }
        grads.put(root.id(), seed);
        for (int id = root.id(); id >= 0; id--) {
            Tensor gy = grads.get(id);
            if (gy == null || !relevant[id] || wrt.contains(id)) {
                continue;
            }
            Node node = g.node(id);
            List<Integer> ins = node.inputs();
            boolean[] need = new boolean[ins.size()];
            for (int i = 0; i < need.length; i++) {
                need[i] = relevant[ins.get(i)];
            }
            Tensor[] contributions = Vjp.of(g.tensor(id), gy, need);
            for (int i = 0; i < need.length; i++) {
                if (need[i] && contributions[i] != null) {
                    grads.merge(ins.get(i), contributions[i], Tensor::add);
                }
            }
        }
        return grads;
    }
}
