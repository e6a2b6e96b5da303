package aether.scheduler.fusion;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.scheduler.compile.CompiledGraph;
import aether.scheduler.compile.Compiler;
import aether.scheduler.compile.GraphDump;
import aether.scheduler.compile.PassManager;
import aether.scheduler.compile.Program;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Which groups the planner forms, which decisions it records, and that fused execution keeps results bit-exact. */
class FusionPlannerTest {

    private static OpGraph graph(Tensor... outputs) {
        return outputs[0].graph().toOpGraph(outputs);
    }

    private static FusionGroup groupOf(FusionPlan plan, int node) {
        return plan.groups().get(plan.group(node));
    }

    /** Compiles {@code outputs} with {@code planner} and compares with the reference executor on random inputs. */
    private static void assertFusedMatchesReference(FusionPlanner planner, Tensor... outputs) {
        Program p = Program.of(graph(outputs));
        Random rnd = new Random(99);
        Map<Integer, TensorValue> in = new HashMap<>();
        try (CompiledGraph cg = new Compiler(new PassManager(List.of()), planner).compile(p)) {
            for (int id : p.runtimeInputs()) {
                Shape s = p.graph().node(id).shape();
                float[] v = new float[s.sizeAsInt()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) rnd.nextGaussian();
                }
                in.put(id, HostTensor.ofFloats(v, s));
                cg.set(id, v);
            }
            cg.run();
            List<HostTensor> expected = new ReferenceExecutor().executeNow(p.graph(), in);
            for (int i = 0; i < expected.size(); i++) {
                assertThat(cg.outputFloats(i)).isEqualTo(expected.get(i).toFloatArray());   // Arrays.equals: bitwise
            }
        }
    }

    @Test
    void anElementwiseChainWithBroadcastOperandsIsOneKernel() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(64, 100), DType.F32);
        Tensor b = g.input("b", Shape.of(100), DType.F32);
        Tensor y = x.add(b).scale(0.5).tanh().mul(x).sub(g.scalar(1, DType.F32)).abs();
        OpGraph og = graph(y);
        FusionPlan plan = new FusionPlanner().plan(og);
        assertThat(plan.groups()).hasSize(1);
        FusionGroup gr = plan.groups().get(0);
        assertThat(gr.kind()).isEqualTo(FusionGroup.Kind.ELEMENTWISE);
        assertThat(gr.members()).hasSize(6);
        assertThat(plan.decisions()).hasSize(5).allMatch(FusionDecision::fused);
        assertFusedMatchesReference(new FusionPlanner(), y);
    }

    @Test
    void matmulBiasActivationBecomesAnEpilogue() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(8, 32), DType.F32);
        Tensor w = g.input("w", Shape.of(16, 32), DType.F32);
        Tensor bias = g.input("bias", Shape.of(16), DType.F32);
        Tensor mm = x.linear(w);
        Tensor y = mm.add(bias).gelu();
        FusionPlan plan = new FusionPlanner().plan(graph(y));
        FusionGroup gr = groupOf(plan, mm.id());
        assertThat(gr.kind()).isEqualTo(FusionGroup.Kind.MATMUL_EPILOGUE);
        assertThat(gr.anchor()).isEqualTo(mm.id());
        assertThat(gr.epilogue()).containsExactly(mm.id() + 1, y.id());
        assertThat(plan.dispatches()).isEqualTo(1);
        assertFusedMatchesReference(new FusionPlanner(), y);
    }

    @Test
    void rmsNormTimesWeightAndMaskedSoftmaxAreRowKernels() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(2, 5, 8), DType.F32);
        Tensor w = g.input("w", Shape.of(8), DType.F32);
        Tensor normed = x.rmsNorm(w, 1e-6);
        Tensor scaled = normed.matmulT(normed).scale(0.25);
        Tensor scores = scaled.add(g.causalMask(5, 5, 3, DType.F32));
        Tensor probs = scores.softmax(-1);
        OpGraph og = graph(probs);
        FusionPlan plan = new FusionPlanner().plan(og);
        FusionGroup norm = groupOf(plan, normed.id());
        assertThat(norm.kind()).isEqualTo(FusionGroup.Kind.ROW_OP);
        assertThat(og.node(norm.anchor()).op()).isInstanceOf(Op.RmsNorm.class);
        assertThat(norm.epilogue()).containsExactly(normed.id());
        FusionGroup soft = groupOf(plan, probs.id());
        assertThat(soft.kind()).isEqualTo(FusionGroup.Kind.ROW_OP);
        assertThat(soft.prologue()).containsExactly(scaled.id(), scores.id());   // scale, add mask
        assertThat(soft.anchor()).isEqualTo(probs.id());
        assertFusedMatchesReference(new FusionPlanner(), probs);
        assertThat(GraphDump.text(og, java.util.Set.of(), plan, null))
                .contains("fuse %" + scores.id() + " into %" + probs.id() + " (softmax prologue)")
                .contains("rms_norm epilogue");
    }

    @Test
    void theCostModelRefusesToRecomputeAnExpensiveBroadcastOperand() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(512, 256), DType.F32);
        Tensor b = g.input("b", Shape.of(256), DType.F32);
        Tensor e = b.exp();
        Tensor y = x.add(e).relu();
        OpGraph og = graph(y);
        FusionPlan plan = new FusionPlanner().plan(og);
        assertThat(plan.group(e.id())).isNotEqualTo(plan.group(y.id()));
        assertThat(plan.decisions()).anySatisfy(d -> {
            assertThat(d.node()).isEqualTo(e.id());
            assertThat(d.fused()).isFalse();
            assertThat(d.fusedNs()).isGreaterThanOrEqualTo(d.unfusedNs());
        });
        assertThat(GraphDump.text(og, java.util.Set.of(), plan, null)).contains("keep %" + e.id());
        // With free transcendentals recomputing is cheaper than a dispatch: fused, and still bit-exact.
        FusionPlanner cheap = new FusionPlanner(new CostModel(10, 2000, 0.25, 0));
        FusionPlan fused = cheap.plan(og);
        assertThat(fused.group(e.id())).isEqualTo(fused.group(y.id()));
        assertFusedMatchesReference(cheap, y);
        assertFusedMatchesReference(new FusionPlanner(), y);
    }

    @Test
    void outputsAndValuesReadElsewhereAreNeverFusedAway() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(10), DType.F32);
        Tensor t = x.exp();
        Tensor y1 = t.add(g.scalar(1, DType.F32));
        Tensor y2 = t.scale(2);
        Tensor u = x.tanh();
        Tensor y3 = u.neg();
        OpGraph og = graph(y1, y2, u, y3);
        FusionPlan plan = new FusionPlanner().plan(og);
        int tId = 1;   // ids after pruning follow creation order
        assertThat(og.node(tId).op()).isEqualTo(new Op.Unary(Op.UnaryFn.EXP));
        assertThat(groupOf(plan, tId).root()).isEqualTo(tId);
        int uId = og.outputs().get(2);
        assertThat(groupOf(plan, uId).root()).isEqualTo(uId);
        for (FusionGroup gr : plan.groups()) {
            for (int m : gr.members()) {
                if (m != gr.root()) {
                    assertThat(og.outputs()).doesNotContain(m);
                }
            }
        }
        assertFusedMatchesReference(new FusionPlanner(), y1, y2, u, y3);
    }

    @Test
    void aPlanCoversEveryComputedNodeOnceInTopologicalGroupOrder() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(4, 6), DType.F32);
        Tensor w = g.input("w", Shape.of(6, 6), DType.F32);
        Tensor h = x.matmul(w).add(x).silu();
        Tensor y = h.layerNorm(1e-5).mul(h).softmax(-1).sum(-1);
        OpGraph og = graph(y);
        FusionPlan plan = new FusionPlanner().plan(og);
        int[] count = new int[og.size()];
        int lastRoot = -1;
        for (FusionGroup gr : plan.groups()) {
            assertThat(gr.root()).isGreaterThan(lastRoot);
            lastRoot = gr.root();
            for (int m : gr.members()) {
                count[m]++;
                for (int input : og.node(m).inputs()) {
                    if (!gr.members().contains(input) && plan.group(input) >= 0) {
                        assertThat(plan.groups().get(plan.group(input)).root()).isEqualTo(input).isLessThan(gr.root());
                    }
                }
            }
        }
        for (int i = 0; i < og.size(); i++) {
            assertThat(count[i]).isEqualTo(FusionPlan.isLeaf(og.node(i).op()) ? 0 : 1);
        }
        assertFusedMatchesReference(new FusionPlanner(), y);
    }

    @Test
    void aPrologueValueAlsoReadByTheEpilogueStaysStored() {
        // Found by PipelinePropertyTest: rms_norm(silu(y)) - silu(y). The epilogue cannot read prologue registers.
        Graph g = new Graph();
        Tensor y = g.input("y", Shape.of(3, 8), DType.F32);
        Tensor s = y.silu();
        Tensor out = s.rmsNorm(1e-5).sub(s);
        FusionPlan plan = new FusionPlanner().plan(graph(out));
        FusionGroup gr = groupOf(plan, out.id());
        assertThat(gr.prologue()).isEmpty();
        assertThat(groupOf(plan, s.id()).root()).isEqualTo(s.id());
        assertFusedMatchesReference(new FusionPlanner(), out);
    }

    @Test
    void aSoftmaxMaskComputedInTheGraphIsNeverAPrologueMember() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(4, 6), DType.F32);
        Tensor t = x.exp();
        Tensor m = t.scale(-1);
        Tensor same = t.softmax(t, 0.5, 0);            // mask and main operand are one value
        Tensor other = t.add(x).softmax(m.add(x), 1, 0);
        FusionPlan plan = new FusionPlanner().plan(graph(same, other));
        for (FusionGroup gr : plan.groups()) {
            if (gr.anchor() >= 0) {
                var anchor = graph(same, other).node(gr.anchor());
                for (int side : anchor.inputs().subList(1, anchor.inputs().size())) {
                    assertThat(gr.members()).doesNotContain(side);
                }
            }
        }
        assertFusedMatchesReference(new FusionPlanner(), same, other);
    }
}
