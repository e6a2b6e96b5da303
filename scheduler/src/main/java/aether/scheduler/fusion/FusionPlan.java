package aether.scheduler.fusion;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A partition of a graph's computed nodes into groups, in execution order (ascending root ids, which is topological:
 * a group only reads roots of earlier groups and leaves). Leaves ({@code input}, {@code full}, {@code causal_mask}) are
 * in no group. {@code decisions} records every cost-model question, accepted or not.
 */
public record FusionPlan(List<FusionGroup> groups, List<FusionDecision> decisions, int[] groupOf) {

    public FusionPlan {
        groups = List.copyOf(groups);
        decisions = List.copyOf(decisions);
        groupOf = groupOf.clone();
    }

    @Override
    public int[] groupOf() {
        return groupOf.clone();
    }

    /** The group computing {@code node}, or -1 for a leaf. */
    public int group(int node) {
        return groupOf[node];
    }

    public static boolean isLeaf(Op op) {
        return op instanceof Op.Input || op instanceof Op.Full || op instanceof Op.CausalMask;
    }

    /** Every computed node alone: the baseline fused plans are compared with. */
    public static FusionPlan unfused(OpGraph graph) {
        List<FusionGroup> groups = new ArrayList<>();
        int[] groupOf = new int[graph.size()];
        Arrays.fill(groupOf, -1);
        for (Node n : graph.nodes()) {
            if (!isLeaf(n.op())) {
                groupOf[n.id()] = groups.size();
                groups.add(single(groups.size(), n));
            }
        }
        return new FusionPlan(groups, List.of(), groupOf);
    }

    static FusionGroup single(int id, Node n) {
        return switch (FusionPlanner.role(n.op())) {
            case ELEMENTWISE -> new FusionGroup(id, FusionGroup.Kind.ELEMENTWISE, n.id(), -1, List.of(),
                    List.of(n.id()));
            default -> new FusionGroup(id, FusionGroup.Kind.SINGLE, n.id(), n.id(), List.of(), List.of());
        };
    }

    /** Number of kernels a run dispatches. */
    public int dispatches() {
        return groups.size();
    }
}
