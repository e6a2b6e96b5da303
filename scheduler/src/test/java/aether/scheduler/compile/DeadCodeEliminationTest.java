package aether.scheduler.compile;

import static aether.scheduler.compile.Programs.assertSameResults;
import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;
import aether.scheduler.exec.HostTensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class DeadCodeEliminationTest {

    @Test
    void dropsEverythingTheOutputsDoNotReadAndKeepsConstantsOfLiveNodes() {
        TensorType t = TensorType.of(DType.F32, 4);
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", t));
        int unused = b.add(new Op.Input("unused", t));
        int c = b.add(new Op.Input("c", t));
        int deadConst = b.add(new Op.Input("dead", t));
        int e = b.add(new Op.Unary(Op.UnaryFn.EXP), x);
        b.add(new Op.Unary(Op.UnaryFn.TANH), e);                      // dead
        b.add(new Op.Binary(Op.BinaryFn.ADD), unused, deadConst);     // dead
        int y = b.add(new Op.Binary(Op.BinaryFn.MUL), e, c);
        HostTensor cv = HostTensor.ofFloats(new float[] {1, 2, 3, 4}, Shape.of(4));
        Program p = new Program(b.build(List.of(y)), Map.of(c, cv, deadConst, cv));
        Rewrite r = new DeadCodeElimination().run(p);
        assertThat(p.size()).isEqualTo(8);
        assertThat(r.program().size()).isEqualTo(4);
        assertThat(r.map(unused)).isEqualTo(-1);
        assertThat(r.map(deadConst)).isEqualTo(-1);
        assertThat(r.program().constants()).containsOnlyKeys(r.map(c));
        assertSameResults(p, r, 21);
    }

    @Test
    void aLiveGraphIsUnchanged() {
        TensorType t = TensorType.of(DType.F32, 2, 2);
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", t));
        int y = b.add(new Op.MatMul(false), x, x);
        Program p = Program.of(b.build(List.of(y, x)));
        Rewrite r = new DeadCodeElimination().run(p);
        assertThat(r.program().graph()).isEqualTo(p.graph());
    }
}
