package aether.scheduler.compile;

import static aether.scheduler.compile.Programs.assertSameResults;
import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ConstantFoldingTest {

    @Test
    void uniformResultsBecomeFullNodes() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(3), DType.F32);
        Tensor c = g.scalar(2, DType.F32).mul(g.scalar(3, DType.F32)).exp().expand(Shape.of(3));
        Tensor y = x.add(c);
        Program p = Program.from(g, List.of(), y).program();
        assertThat(p.size()).isEqualTo(7);
        Rewrite r = Programs.runThenDce(new ConstantFolding(), p);
        assertThat(r.program().size()).isEqualTo(3);   // x, full(exp 6 rounded to f32), add
        Op folded = r.program().graph().node(1).op();
        assertThat(folded).isEqualTo(new Op.Full((float) Math.exp(6), aether.runtime.ir.TensorType.of(DType.F32, 3)));
        assertSameResults(p, r, 31);
    }

    @Test
    void constantTensorsFoldIntoConstantInputsAndRuntimeInputsAreUntouched() {
        Graph g = new Graph();
        Random rnd = new Random(5);
        float[] wv = new float[12];
        for (int i = 0; i < wv.length; i++) {
            wv[i] = rnd.nextFloat() - 0.5f;
        }
        Tensor w = g.tensor(wv, Shape.of(3, 4));
        Tensor x = g.input("x", Shape.of(2, 4), DType.F32);
        Tensor wt = w.mul(g.scalar(0.5, DType.F32)).tanh();            // constant subgraph of 3 computed nodes
        Tensor causal = g.causalMask(2, 3, 0, DType.F32);
        Tensor y = x.linear(wt).softmax(causal, 1, 0);                  // softmax reads a constant mask leaf: kept
        Program p = Program.from(g, List.of(w), y).program();
        Rewrite r = Programs.runThenDce(new ConstantFolding(), p);
        assertThat(Programs.computed(p)).isEqualTo(6);                  // full, mul, tanh, mask, matmul, softmax
        assertThat(Programs.computed(r.program())).isEqualTo(3);        // mask, matmul, softmax
        assertThat(r.program().constants()).hasSize(1);
        assertThat(r.program().runtimeInputs()).hasSize(1);
        assertSameResults(p, r, 32);
    }

    @Test
    void nothingDependingOnARuntimeInputIsFolded() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(4), DType.F32);
        Tensor y = x.exp().add(g.scalar(1, DType.F32)).sum(0);
        Program p = Program.from(g, List.of(), y).program();
        Rewrite r = new ConstantFolding().run(p);
        assertThat(r.program().graph()).isEqualTo(p.graph());
    }

    @Test
    void largeNonUniformResultsStayComputedBeyondTheLimit() {
        Graph g = new Graph();
        Tensor t = g.tensor(new float[] {1, 2, 3}, Shape.of(3));
        Tensor big = t.exp().expand(Shape.of(1000, 3));
        Tensor y = big.add(g.input("x", Shape.of(1000, 3), DType.F32));
        Program p = Program.from(g, List.of(t), y).program();
        Rewrite limited = new ConstantFolding(1000).run(p);
        Rewrite dce = new DeadCodeElimination().run(limited.program());
        assertThat(dce.program().constants()).hasSize(1);
        assertThat(dce.program().graph().nodes()).anyMatch(n -> n.op() instanceof Op.Expand);
        assertSameResults(p, limited.then(dce), 33);
        Rewrite unlimited = Programs.runThenDce(new ConstantFolding(), p);
        assertThat(unlimited.program().graph().nodes()).noneMatch(n -> n.op() instanceof Op.Expand);
        assertThat(((HostTensor) unlimited.program().constants().values().iterator().next()).size()).isEqualTo(3000);
        assertSameResults(p, unlimited, 34);
    }

    @Test
    void aConstantOutputIsFolded() {
        Graph g = new Graph();
        Tensor y = g.full(2, Shape.of(2), DType.F16).pow(3);
        Program p = Program.from(g, List.of(), y).program();
        Rewrite r = Programs.runThenDce(new ConstantFolding(), p);
        assertThat(r.program().size()).isEqualTo(1);
        assertThat(r.program().graph().node(0).op()).isEqualTo(new Op.Full(8, aether.runtime.ir.TensorType.of(DType.F16,
                2)));
        assertSameResults(p, r, 35);
    }
}
