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

class WeightLayoutTest {

    private static double[] random(int n, long seed) {
        Random rnd = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = rnd.nextGaussian();
        }
        return v;
    }

    @Test
    void constantWeightsArePreTransposedOnceForMatmulT() {
        Graph g = new Graph();
        Tensor w = g.tensor(random(5 * 3, 1), Shape.of(5, 3), DType.F32);   // [k=5, n=3]
        Tensor x = g.input("x", Shape.of(4, 5), DType.F32);
        Tensor x2 = g.input("x2", Shape.of(2, 5), DType.F32);
        Tensor y1 = x.matmul(w);
        Tensor y2 = x2.matmul(w).relu();
        Program p = Program.from(g, List.of(w), y1, y2).program();
        Rewrite r = Programs.runThenDce(new WeightLayout(), p);
        var nodes = r.program().graph().nodes();
        assertThat(nodes.stream().filter(n -> n.op() instanceof Op.MatMul m && m.transposeB()).count()).isEqualTo(2);
        assertThat(nodes.stream().filter(n -> n.op() instanceof Op.MatMul m && !m.transposeB()).count()).isZero();
        assertThat(r.program().constants()).hasSize(1);
        HostTensor wt = (HostTensor) r.program().constants().values().iterator().next();
        assertThat(wt.shape()).isEqualTo(Shape.of(3, 5));
        assertThat(wt.get(1 * 5 + 4)).isEqualTo(((HostTensor) p.constants().values().iterator().next()).get(4 * 3 + 1));
        assertSameResults(p, r, 41);
    }

    @Test
    void runtimeTransposesFeedingMatmulBecomeMatmulT() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(2, 4, 6), DType.F32);
        Tensor k = g.input("k", Shape.of(2, 5, 6), DType.F32);
        Tensor scores = x.matmul(k.transpose(-1, -2));
        Tensor other = x.matmul(g.input("b", Shape.of(6, 3), DType.F32));   // runtime, untransposed: kept
        Program p = Program.from(g, List.of(), scores, other).program();
        Rewrite r = Programs.runThenDce(new WeightLayout(), p);
        assertThat(r.program().size()).isEqualTo(p.size() - 1);
        assertThat(r.program().graph().nodes()).noneMatch(n -> n.op() instanceof Op.Permute);
        assertSameResults(p, r, 42);
    }
}
