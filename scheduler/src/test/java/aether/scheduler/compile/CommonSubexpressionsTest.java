package aether.scheduler.compile;

import static aether.scheduler.compile.Programs.assertSameResults;
import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class CommonSubexpressionsTest {

    @Test
    void identicalChainsMergeTransitively() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(2, 4), DType.F32);
        Tensor w = g.input("w", Shape.of(3, 4), DType.F32);
        Tensor a = x.linear(w).exp().add(g.scalar(1, DType.F32));
        Tensor b = x.linear(w).exp().add(g.scalar(1, DType.F32));
        Tensor y = a.mul(b);
        Program p = Program.from(g, List.of(), y).program();
        assertThat(p.size()).isEqualTo(11);
        Rewrite r = new CommonSubexpressions().run(p);
        assertThat(r.program().size()).isEqualTo(7);    // x, w, matmul_t, exp, full, add, mul: full merged too
        assertSameResults(p, r, 11);
    }

    @Test
    void inputsAndDifferentAttributesAreNeverMerged() {
        Graph g = new Graph();
        Tensor x1 = g.input("x", Shape.of(3), DType.F32);
        Tensor x2 = g.input("x", Shape.of(3), DType.F32);   // same label, still another value
        Tensor pz = g.full(0.0, Shape.of(3), DType.F32);
        Tensor nz = g.full(-0.0, Shape.of(3), DType.F32);
        Tensor a = x1.scale(2).add(x2.scale(2));
        Tensor b = x1.scale(3).add(pz).add(nz);
        Program p = Program.from(g, List.of(), a, b).program();
        Rewrite r = new CommonSubexpressions().run(p);
        assertThat(r.program().size()).isEqualTo(p.size());
        assertSameResults(p, r, 12);
    }

    @Test
    void operandOrderMatters() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(3), DType.F32);
        Tensor y = g.input("y", Shape.of(3), DType.F32);
        Tensor d1 = x.sub(y);
        Tensor d2 = y.sub(x);
        Tensor d3 = x.sub(y);
        Program p = Program.from(g, List.of(), d1, d2, d3).program();
        Rewrite r = new CommonSubexpressions().run(p);
        assertThat(r.program().size()).isEqualTo(4);
        assertThat(r.program().graph().outputs()).containsExactly(2, 3, 2);
        assertSameResults(p, r, 13);
    }
}
