package aether.scheduler.fusion;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Greedy fusion from the outputs back. Walking node ids downward, each node not yet claimed becomes a group root and
 * then absorbs producers while the {@link CostModel} says the bigger kernel beats the smaller one plus the producer run
 * alone:
 *
 * <ol>
 *   <li>an elementwise root absorbs elementwise producers (any shape that broadcasts to the root; smaller ones are
 *       recomputed per element, which the cost model charges);</li>
 *   <li>then one matmul, rms_norm, layer_norm or softmax producer with exactly the root's shape becomes the anchor, the
 *       elementwise members its epilogue (matmul + bias + activation, rms_norm × weight);</li>
 *   <li>a norm or softmax anchor absorbs the elementwise computation of its main operand as a prologue (mask + softmax,
 *       scale + softmax).</li>
 * </ol>
 *
 * A producer joins only if it is not a graph output and every one of its readers is already in the group, so no
 * intermediate value is ever needed outside the kernel that computes it. Deterministic for a given graph.
 */
public final class FusionPlanner {

    /** How the planner sees an op. */
    enum Role { LEAF, ELEMENTWISE, MATMUL, ROW_OP, OTHER }

    static Role role(Op op) {
        return switch (op) {
            case Op.Input i -> Role.LEAF;
            case Op.Full f -> Role.LEAF;
            case Op.CausalMask m -> Role.LEAF;
            case Op.Unary u -> Role.ELEMENTWISE;
            case Op.Pow p -> Role.ELEMENTWISE;
            case Op.Clamp c -> Role.ELEMENTWISE;
            case Op.Scale s -> Role.ELEMENTWISE;
            case Op.Binary b -> Role.ELEMENTWISE;
            case Op.Cast c -> Role.ELEMENTWISE;
            case Op.MatMul m -> Role.MATMUL;
            case Op.RmsNorm r -> Role.ROW_OP;
            case Op.LayerNorm l -> Role.ROW_OP;
            case Op.Softmax s -> Role.ROW_OP;
            default -> Role.OTHER;
        };
    }

    private final CostModel cost;

    public FusionPlanner(CostModel cost) {
        this.cost = cost;
    }

    public FusionPlanner() {
        this(CostModel.cpu());
    }

    public CostModel costModel() {
        return cost;
    }

    public FusionPlan plan(OpGraph graph) {
        int n = graph.size();
        List<List<Integer>> readers = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            readers.add(new ArrayList<>());
        }
        for (Node node : graph.nodes()) {
            for (int input : node.inputs()) {
                if (!readers.get(input).contains(node.id())) {
                    readers.get(input).add(node.id());
                }
            }
        }
        boolean[] output = new boolean[n];
        for (int o : graph.outputs()) {
            output[o] = true;
        }
        boolean[] claimed = new boolean[n];
        List<FusionDecision> decisions = new ArrayList<>();
        List<FusionGroup> found = new ArrayList<>();
        Ctx ctx = new Ctx(graph, readers, output, claimed, decisions);
        for (int id = n - 1; id >= 0; id--) {
            Node root = graph.node(id);
            Role r = role(root.op());
            if (claimed[id] || r == Role.LEAF) {
                continue;
            }
            claimed[id] = true;
            found.add(switch (r) {
                case ELEMENTWISE -> elementwiseRoot(ctx, root);
                case ROW_OP -> {
                    Set<Integer> members = new TreeSet<>(List.of(id));
                    List<Integer> pro = prologue(ctx, root, members);
                    yield new FusionGroup(-1, pro.isEmpty() ? FusionGroup.Kind.SINGLE : FusionGroup.Kind.ROW_OP, id,
                            id, pro, List.of());
                }
                default -> new FusionGroup(-1, FusionGroup.Kind.SINGLE, id, id, List.of(), List.of());
            });
        }
        found.sort((a, b) -> Integer.compare(a.root(), b.root()));
        List<FusionGroup> groups = new ArrayList<>(found.size());
        int[] groupOf = new int[n];
        Arrays.fill(groupOf, -1);
        for (FusionGroup g : found) {
            FusionGroup numbered = new FusionGroup(groups.size(), g.kind(), g.root(), g.anchor(), g.prologue(),
                    g.epilogue());
            for (int m : numbered.members()) {
                groupOf[m] = numbered.id();
            }
            groups.add(numbered);
        }
        return new FusionPlan(groups, decisions, groupOf);
    }

    private record Ctx(OpGraph graph, List<List<Integer>> readers, boolean[] output, boolean[] claimed,
            List<FusionDecision> decisions) {}

    private FusionGroup elementwiseRoot(Ctx ctx, Node root) {
        Set<Integer> members = new TreeSet<>(List.of(root.id()));
        grow(ctx, members, members, root.id(), "elementwise", Set.of());
        // An anchor: a matmul / norm / softmax producing exactly the root's shape, read only inside the group.
        int anchor = -1;
        for (int candidate : externals(ctx, members)) {
            Node c = ctx.graph.node(candidate);
            Role r = role(c.op());
            if ((r == Role.MATMUL || r == Role.ROW_OP) && absorbable(ctx, candidate, members)
                    && c.type().equals(root.type())) {
                String rule = r == Role.MATMUL ? "matmul epilogue" : c.op().name() + " epilogue";
                if (ask(ctx, members, candidate, root.id(), rule)) {
                    anchor = candidate;
                    break;
                }
            }
        }
        if (anchor < 0) {
            return new FusionGroup(-1, FusionGroup.Kind.ELEMENTWISE, root.id(), -1, List.of(), List.copyOf(members));
        }
        List<Integer> epilogue = List.copyOf(members);
        members.add(anchor);
        ctx.claimed[anchor] = true;
        Node a = ctx.graph.node(anchor);
        if (role(a.op()) == Role.MATMUL) {
            return new FusionGroup(-1, FusionGroup.Kind.MATMUL_EPILOGUE, root.id(), anchor, List.of(), epilogue);
        }
        List<Integer> pro = prologue(ctx, a, members);
        return new FusionGroup(-1, FusionGroup.Kind.ROW_OP, root.id(), anchor, pro, epilogue);
    }

    /** Elementwise producers of a norm/softmax's main operand, with that operand's exact shape at the top. */
    private List<Integer> prologue(Ctx ctx, Node anchor, Set<Integer> members) {
        int x = anchor.input(0);
        Node xn = ctx.graph.node(x);
        // Read by the anchor alone, and only as its main operand: the epilogue cannot see prologue values, and the
        // anchor reads its other operands (a softmax mask) from memory.
        Set<Integer> sideOperands = new HashSet<>(anchor.inputs().subList(1, anchor.inputs().size()));
        if (role(xn.op()) != Role.ELEMENTWISE || !absorbable(ctx, x, Set.of(anchor.id()))
                || sideOperands.contains(x) || !xn.type().equals(anchor.type())) {
            return List.of();
        }
        int root = members.stream().mapToInt(Integer::intValue).max().orElseThrow();
        if (!ask(ctx, members, x, root, anchor.op().name() + " prologue")) {
            return List.of();
        }
        members.add(x);
        ctx.claimed[x] = true;
        // The prologue region: its members are read only by the prologue itself or the anchor.
        Set<Integer> region = new TreeSet<>(List.of(x, anchor.id()));
        grow(ctx, region, members, root, anchor.op().name() + " prologue", sideOperands);
        region.remove(anchor.id());
        return List.copyOf(region);
    }

    /**
     * Absorbs elementwise producers of {@code region} (read only from inside it) into it and into the whole group
     * {@code members} while the cost model agrees.
     */
    private void grow(Ctx ctx, Set<Integer> region, Set<Integer> members, int root, String rule,
            Set<Integer> excluded) {
        boolean changed = true;
        Set<Integer> rejected = new HashSet<>();
        while (changed) {
            changed = false;
            List<Integer> ext = externals(ctx, region);
            for (int i = ext.size() - 1; i >= 0; i--) {
                int p = ext.get(i);
                if (rejected.contains(p) || excluded.contains(p) || role(ctx.graph.node(p).op()) != Role.ELEMENTWISE
                        || !absorbable(ctx, p, region)) {
                    continue;
                }
                if (ask(ctx, members, p, root, rule)) {
                    region.add(p);
                    members.add(p);
                    ctx.claimed[p] = true;
                    changed = true;
                    break;
                }
                rejected.add(p);
            }
        }
    }

    private boolean ask(Ctx ctx, Set<Integer> members, int candidate, int root, String rule) {
        double alone = cost.estimate(ctx.graph, members, root) + cost.estimate(ctx.graph, List.of(candidate),
                candidate);
        Set<Integer> with = new TreeSet<>(members);
        with.add(candidate);
        double fused = cost.estimate(ctx.graph, with, root);
        boolean yes = fused < alone;
        ctx.decisions.add(new FusionDecision(candidate, root, yes, fused, alone, rule));
        return yes;
    }

    private static boolean absorbable(Ctx ctx, int p, Set<Integer> members) {
        if (ctx.claimed[p] || ctx.output[p]) {
            return false;
        }
        for (int r : ctx.readers.get(p)) {
            if (!members.contains(r)) {
                return false;
            }
        }
        return true;
    }

    /** Inputs of members that are not members, ascending, without duplicates. */
    private static List<Integer> externals(Ctx ctx, Set<Integer> members) {
        TreeSet<Integer> ext = new TreeSet<>();
        for (int m : members) {
            for (int input : ctx.graph.node(m).inputs()) {
                if (!members.contains(input)) {
                    ext.add(input);
                }
            }
        }
        return new ArrayList<>(ext);
    }
}
