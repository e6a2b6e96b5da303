package aether.scheduler.actor;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.JobOptions.Granularity;
import aether.scheduler.fusion.FusionPlanner;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import aether.scheduler.memory.RandomGraphs;
import java.util.HashSet;
import java.util.Set;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

class JobPlannerTest {

    static final JobPlanner planner = new JobPlanner();

    static int kernels(OpGraph compiled) {
        return new FusionPlanner().plan(compiled).groups().size();
    }

    @Test
    void shouldKeepAStraightChainInOneSegment() {
        Graph g = new Graph();
        Tensor x = g.tensor(new float[64], Shape.of(8, 8));
        Tensor y = x.softmax(-1).matmul(x).rmsNorm(1e-6).matmul(x).softmax(-1);
        OpGraph graph = g.toOpGraph(y);

        JobPlan chain = planner.plan(graph, JobOptions.DEFAULT);
        JobPlan fine = planner.plan(graph, JobOptions.DEFAULT.withGranularity(Granularity.FUSION_GROUP));

        assertThat(chain.segments()).hasSize(1);
        assertThat(chain.segments().getFirst().spec().groups()).isEqualTo(kernels(chain.graph())).isGreaterThan(3);
        assertThat(fine.segments()).hasSize(kernels(fine.graph()));
    }

    @Test
    void shouldCapSegmentsAtMaxGroups() {
        Graph g = new Graph();
        Tensor x = g.tensor(new float[64], Shape.of(8, 8));
        Tensor y = x.softmax(-1).matmul(x).rmsNorm(1e-6).matmul(x).softmax(-1);
        JobPlan plan = planner.plan(g.toOpGraph(y), new JobOptions(0, 1, Granularity.CHAIN, 2));
        assertThat(plan.segments()).allSatisfy(s -> assertThat(s.spec().groups()).isLessThanOrEqualTo(2));
        assertThat(plan.segments().stream().mapToInt(s -> s.spec().groups()).sum()).isEqualTo(kernels(plan.graph()));
    }

    @Test
    void shouldSplitIndependentBranchesAndJoinThem() {
        Graph g = new Graph();
        Tensor x = g.tensor(new float[32], Shape.of(4, 8));
        Tensor w = g.tensor(new float[64], Shape.of(8, 8));
        Tensor v = g.tensor(new float[64], Shape.of(8, 8));   // not w: CSE would merge the branches' first matmul
        Tensor left = x.matmul(w).relu().matmul(w);
        Tensor right = x.matmul(v).tanh().matmul(v).softmax(-1);
        Tensor out = left.add(right).rmsNorm(1e-5);

        JobPlan plan = planner.plan(g.toOpGraph(out), JobOptions.DEFAULT);

        assertThat(plan.segments()).hasSize(3);
        assertThat(plan.segments().get(0).dependsOn()).isEmpty();
        assertThat(plan.segments().get(1).dependsOn()).isEmpty();
        assertThat(plan.segments().get(2).dependsOn()).containsExactly(0, 1);
        assertThat(plan.segments().get(2).outputs()).containsExactly(plan.outputs().getFirst());
    }

    /** No lost or duplicated work: every computed node runs in exactly one segment, in dependency order. */
    @Property(tries = 200)
    void everyNodeRunsInExactlyOneSegmentAfterItsProducers(@ForAll long seed,
            @ForAll @IntRange(min = 1, max = 30) int ops, @ForAll boolean redundancy, @ForAll Granularity granularity,
            @ForAll @IntRange(min = 1, max = 4) int maxGroups) {
        OpGraph graph = RandomGraphs.generate(seed, ops, redundancy);
        JobPlan plan = planner.plan(graph, new JobOptions(0, 1, granularity, maxGroups));
        OpGraph g = plan.graph();

        Set<Integer> computed = new HashSet<>();
        Set<Integer> available = new HashSet<>(plan.jobInputs().keySet());
        available.addAll(plan.constants().keySet());
        int[] producedBy = new int[g.size()];
        java.util.Arrays.fill(producedBy, -1);
        for (JobPlan.Segment s : plan.segments()) {
            OpGraph sg = s.spec().graph();
            assertThat(s.spec().inputNodes()).hasSize(s.inputs().size());
            for (int i = 0; i < s.inputs().size(); i++) {
                int x = s.inputs().get(i);
                assertThat(available).as("segment %d reads %%%d before it exists", s.spec().index(), x).contains(x);
                assertThat(sg.node(s.spec().inputNodes().get(i)).type()).isEqualTo(g.node(x).type());
                if (producedBy[x] >= 0) {
                    assertThat(s.dependsOn()).contains(producedBy[x]);
                }
            }
            assertThat(sg.outputs()).hasSize(s.outputs().size());
            for (int i = 0; i < s.outputs().size(); i++) {
                assertThat(sg.node(sg.outputs().get(i)).type()).isEqualTo(g.node(s.outputs().get(i)).type());
                available.add(s.outputs().get(i));
                producedBy[s.outputs().get(i)] = s.spec().index();
            }
            for (int m : s.members()) {
                assertThat(computed.add(m)).as("%%%d computed by two segments", m).isTrue();
            }
            assertThat(s.spec().sourceNodes()).allSatisfy(src -> assertThat(src).isBetween(-1, graph.size() - 1));
            assertThat(s.dependsOn()).allSatisfy(d -> assertThat(d).isLessThan(s.spec().index()));
            if (granularity == Granularity.FUSION_GROUP) {
                assertThat(s.spec().groups()).isLessThanOrEqualTo(1);
            } else {
                assertThat(s.spec().groups()).isLessThanOrEqualTo(maxGroups);
            }
        }
        for (Node n : g.nodes()) {
            boolean leaf = n.op() instanceof Op.Input || n.op() instanceof Op.Full || n.op() instanceof Op.CausalMask;
            assertThat(computed.contains(n.id())).as("%%%d %s computed once", n.id(), n.op().name()).isEqualTo(!leaf);
        }
        assertThat(available).containsAll(plan.outputs().stream().filter(o -> !isComputedLeaf(g, o)).toList());
    }

    private static boolean isComputedLeaf(OpGraph g, int id) {
        return g.node(id).op() instanceof Op.Full || g.node(id).op() instanceof Op.CausalMask;
    }
}
