package aether.scheduler.memory;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.scheduler.fusion.CostModel;
import aether.scheduler.fusion.FusionGroup;
import aether.scheduler.fusion.FusionPlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Lifetimes of the values a fused plan stores, in execution order (one step per group). A group stores only its root;
 * fused-away members never reach memory. A {@code reshape} is a view: it stores nothing and its readers count as readers
 * of its operand's storage. Leaves (inputs, constants, {@code full}, {@code causal_mask}) are excluded: they live outside
 * the arena. Outputs are live until after the last step.
 */
public final class Liveness {

    private final int[] storage;
    private final List<Lifetime> lifetimes;
    private final int steps;

    private Liveness(int[] storage, List<Lifetime> lifetimes, int steps) {
        this.storage = storage;
        this.lifetimes = lifetimes;
        this.steps = steps;
    }

    public static Liveness analyze(OpGraph graph, FusionPlan plan) {
        int n = graph.size();
        int[] storage = new int[n];
        for (Node node : graph.nodes()) {
            storage[node.id()] = node.op() instanceof Op.Reshape ? storage[node.input(0)] : node.id();
        }
        List<FusionGroup> groups = plan.groups();
        int[] first = new int[n];
        int[] last = new int[n];
        Arrays.fill(first, -1);
        Arrays.fill(last, -1);
        for (FusionGroup g : groups) {
            if (storage[g.root()] == g.root() && !FusionPlan.isLeaf(graph.node(g.root()).op())) {
                first[g.root()] = g.id();
                last[g.root()] = g.id();
            }
            Set<Integer> members = new HashSet<>(g.members());
            for (int m : members) {
                for (int input : graph.node(m).inputs()) {
                    if (!members.contains(input)) {
                        int s = storage[input];
                        last[s] = Math.max(last[s], g.id());
                    }
                }
            }
        }
        for (int o : graph.outputs()) {
            last[storage[o]] = groups.size();
        }
        List<Lifetime> lifetimes = new ArrayList<>();
        for (int id = 0; id < n; id++) {
            if (first[id] >= 0) {
                lifetimes.add(new Lifetime(id, CostModel.bytes(graph.node(id)), first[id], last[id]));
            }
        }
        return new Liveness(storage, List.copyOf(lifetimes), groups.size());
    }

    /** The node whose buffer holds {@code node}'s value (itself, or the operand of a reshape chain). */
    public int storage(int node) {
        return storage[node];
    }

    /** One lifetime per stored value, ascending node id. */
    public List<Lifetime> lifetimes() {
        return lifetimes;
    }

    /** Number of steps (groups); outputs are live through step {@code steps()}. */
    public int steps() {
        return steps;
    }
}
