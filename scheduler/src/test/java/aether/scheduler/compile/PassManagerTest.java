package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class PassManagerTest {

    @Test
    void recordsNodeCountsPerPassAndComposesMappings() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(4, 8), DType.F32);
        Tensor w = g.tensor(new float[8 * 3], Shape.of(8, 3));
        Tensor unused = g.input("unused", Shape.of(2), DType.F32);
        Tensor a = x.mul(g.full(1, Shape.of(4, 8), DType.F32)).matmul(w);           // simplify, layout
        Tensor b = x.matmul(w);                                                      // CSE with a
        Tensor c = g.scalar(3, DType.F32).exp().add(g.scalar(1, DType.F32));        // constant folding
        Tensor y = a.add(b).add(c).relu();
        Program.Snapshot snap = Program.from(g, List.of(w), y, unused.neg());
        Program p = snap.program();
        PassManager.Result r = PassManager.standard().run(p);
        List<PassManager.PassRecord> log = r.records();
        assertThat(log).extracting(PassManager.PassRecord::pass).containsExactly("simplify",
                "dead-code-elimination", "common-subexpressions", "constant-folding", "dead-code-elimination",
                "weight-layout", "dead-code-elimination");
        for (int i = 1; i < log.size(); i++) {
            assertThat(log.get(i).nodesBefore()).isEqualTo(log.get(i - 1).nodesAfter());
        }
        assertThat(log.get(0).nodesBefore()).isEqualTo(p.size());
        assertThat(log.get(1).nodesAfter()).isEqualTo(log.get(0).nodesBefore() - 2);   // mul and full(1) gone
        assertThat(log.get(2).nodesAfter()).isEqualTo(log.get(2).nodesBefore() - 1);   // one matmul merged
        assertThat(log.get(4).nodesAfter()).isLessThan(log.get(3).nodesBefore());     // exp(3)+1 folded
        // x, unused, W^T, matmul_t, add(a, a), full(c), add, relu, neg
        assertThat(r.program().size()).isEqualTo(9);
        assertThat(r.program().graph().nodes()).anyMatch(n -> n.op() instanceof Op.MatMul m && m.transposeB());
        assertThat(r.rewrite().map(snap.mapping()[x.id()])).isGreaterThanOrEqualTo(0);
        assertThat(r.log()).contains("constant-folding").contains(" -> ");
        Programs.assertSameResults(p, r.rewrite(), 51);
    }

    @Test
    void anEmptyPipelineIsTheIdentity() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(3), DType.F32);
        Program p = Program.from(g, List.of(), x.exp()).program();
        PassManager.Result r = new PassManager(List.of()).run(p);
        assertThat(r.program()).isEqualTo(p);
        assertThat(r.records()).isEmpty();
        assertThat(r.rewrite().mapping()).containsExactly(0, 1);
    }
}
