package aether.scheduler.actor;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.SegmentSpec;
import aether.runtime.protocol.TensorBytes;
import aether.scheduler.compile.PassManager;
import aether.scheduler.compile.Program;
import aether.scheduler.fusion.FusionGroup;
import aether.scheduler.fusion.FusionPlan;
import aether.scheduler.fusion.FusionPlanner;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Compiles a submitted graph (the standard passes), plans its fused kernels ({@link FusionPlanner}) and groups the
 * kernels into segments: with {@link JobOptions.Granularity#FUSION_GROUP} each kernel is a segment; with
 * {@link JobOptions.Granularity#CHAIN} a kernel joins its producer's segment when that segment is its only producer
 * and it is that segment's only consumer, so straight-line stretches (a layer, a step) travel as one message while
 * independent branches stay separate segments that can run concurrently on different workers. Leaves that are
 * computed ({@code full}, {@code causal_mask}) are recomputed inside each segment that reads them. Stateless.
 */
final class JobPlanner {

    private final PassManager passes = PassManager.standard();
    private final FusionPlanner fusion = new FusionPlanner();

    JobPlan plan(OpGraph submitted, JobOptions options) {
        PassManager.Result compiled = passes.run(Program.of(submitted));
        Program program = compiled.program();
        OpGraph g = program.graph();
        int n = g.size();
        int[] submittedOf = new int[n];
        Arrays.fill(submittedOf, -1);
        Map<Integer, Integer> jobInputs = new HashMap<>();
        for (int old = submitted.size() - 1; old >= 0; old--) {
            int now = compiled.rewrite().map(old);
            if (now >= 0) {
                submittedOf[now] = old;
            }
        }
        for (Node node : g.nodes()) {
            if (node.op() instanceof Op.Input && !program.isConstant(node.id())) {
                int old = submittedOf[node.id()];
                if (old < 0 || !(submitted.node(old).op() instanceof Op.Input)) {
                    throw new IllegalStateException("compiled input %" + node.id() + " has no submitted input");
                }
                jobInputs.put(node.id(), old);
            }
        }
        List<Integer> outputs = new ArrayList<>();
        for (int o : submitted.outputs()) {
            outputs.add(compiled.rewrite().map(o));
        }

        FusionPlan plan = fusion.plan(g);
        List<FusionGroup> groups = plan.groups();
        // readers[node]: nodes reading it; used to find each segment's exports and each group's consumers
        List<List<Integer>> readers = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            readers.add(new ArrayList<>());
        }
        for (Node node : g.nodes()) {
            for (int in : node.inputs()) {
                readers.get(in).add(node.id());
            }
        }
        boolean[] isOutput = new boolean[n];
        for (int o : outputs) {
            isOutput[o] = true;
        }
        int[] segmentOfGroup = new int[groups.size()];
        List<List<Integer>> segmentGroups = new ArrayList<>();
        for (FusionGroup group : groups) {
            TreeSet<Integer> producers = producerGroups(g, plan, group);
            int target = -1;
            if (options.granularity() == JobOptions.Granularity.CHAIN && !producers.isEmpty()) {
                int s = segmentOfGroup[producers.first()];
                boolean single = producers.stream().allMatch(p -> segmentOfGroup[p] == s);
                if (single && segmentGroups.get(s).size() < options.maxGroupsPerSegment()
                        && onlyConsumerIs(g, plan, segmentGroups.get(s), groups, group.id(), readers)) {
                    target = s;
                }
            }
            if (target < 0) {
                target = segmentGroups.size();
                segmentGroups.add(new ArrayList<>());
            }
            segmentGroups.get(target).add(group.id());
            segmentOfGroup[group.id()] = target;
        }

        int[] segmentOfNode = new int[n];
        Arrays.fill(segmentOfNode, -1);
        List<TreeSet<Integer>> members = new ArrayList<>();
        for (int s = 0; s < segmentGroups.size(); s++) {
            TreeSet<Integer> m = new TreeSet<>();
            for (int gi : segmentGroups.get(s)) {
                m.addAll(groups.get(gi).members());
            }
            for (int node : m) {
                segmentOfNode[node] = s;
            }
            members.add(m);
        }
        // a computed leaf (full, causal_mask) that is itself an output gets a segment of its own
        for (int o : outputs) {
            Op op = g.node(o).op();
            if (segmentOfNode[o] < 0 && (op instanceof Op.Full || op instanceof Op.CausalMask)) {
                segmentOfNode[o] = members.size();
                members.add(new TreeSet<>(List.of(o)));
                segmentGroups.add(List.of());
            }
        }
        List<JobPlan.Segment> segments = new ArrayList<>();
        for (int s = 0; s < members.size(); s++) {
            segments.add(segment(g, s, members.get(s), segmentGroups.get(s).size(), segmentOfNode, readers, isOutput,
                    submittedOf));
        }
        return new JobPlan(g, submittedOf, jobInputs, program.constants(), outputs, segments);
    }

    /** Groups computing the values {@code group} reads (leaves excluded), ascending. */
    private static TreeSet<Integer> producerGroups(OpGraph g, FusionPlan plan, FusionGroup group) {
        TreeSet<Integer> producers = new TreeSet<>();
        List<Integer> members = group.members();
        for (int m : members) {
            for (int in : g.node(m).inputs()) {
                int p = plan.group(in);
                if (p >= 0 && p != group.id()) {
                    producers.add(p);
                }
            }
        }
        return producers;
    }

    /** True when every reader outside the segment's groups is in group {@code consumer}. */
    private static boolean onlyConsumerIs(OpGraph g, FusionPlan plan, List<Integer> segmentGroups,
            List<FusionGroup> groups, int consumer, List<List<Integer>> readers) {
        for (int gi : segmentGroups) {
            for (int m : groups.get(gi).members()) {
                for (int r : readers.get(m)) {
                    int rg = plan.group(r);
                    if (rg != consumer && !segmentGroups.contains(rg)) {
                        return false;
                    }
                }
            }
        }
        return true;
    }

    private static JobPlan.Segment segment(OpGraph g, int index, TreeSet<Integer> members, int groups,
            int[] segmentOfNode, List<List<Integer>> readers, boolean[] isOutput, int[] submittedOf) {
        TreeSet<Integer> external = new TreeSet<>();
        for (int m : members) {
            for (int in : g.node(m).inputs()) {
                if (!members.contains(in)) {
                    external.add(in);
                }
            }
        }
        OpGraph.Builder b = new OpGraph.Builder();
        Map<Integer, Integer> local = new HashMap<>();
        List<Integer> source = new ArrayList<>();
        List<Integer> inputs = new ArrayList<>();
        TreeSet<Integer> dependsOn = new TreeSet<>();
        for (int x : external) {
            Node node = g.node(x);
            if (node.op() instanceof Op.Full || node.op() instanceof Op.CausalMask) {
                continue;   // recomputed below, where it is read
            }
            local.put(x, b.add(new Op.Input("%" + x, node.type())));
            source.add(submittedOf[x]);
            inputs.add(x);
            if (segmentOfNode[x] >= 0) {
                dependsOn.add(segmentOfNode[x]);
            }
        }
        for (int x : external) {
            Node node = g.node(x);
            if (node.op() instanceof Op.Full || node.op() instanceof Op.CausalMask) {
                local.put(x, b.add(node.op()));
                source.add(submittedOf[x]);
            }
        }
        List<Integer> outputs = new ArrayList<>();
        List<Integer> localOutputs = new ArrayList<>();
        long outputBytes = 0;
        for (int m : members) {
            Node node = g.node(m);
            int[] in = new int[node.inputs().size()];
            for (int k = 0; k < in.length; k++) {
                in[k] = local.get(node.input(k));
            }
            local.put(m, b.add(node.op(), in));
            source.add(submittedOf[m]);
            boolean exported = isOutput[m];
            for (int r : readers.get(m)) {
                exported |= !members.contains(r);
            }
            if (exported) {
                outputs.add(m);
                localOutputs.add(local.get(m));
                outputBytes += TensorBytes.byteSize(node.type());
            }
        }
        SegmentSpec spec = new SegmentSpec(index, b.build(localOutputs), source, groups);
        return new JobPlan.Segment(spec, inputs, outputs, List.copyOf(dependsOn), outputBytes);
    }
}
