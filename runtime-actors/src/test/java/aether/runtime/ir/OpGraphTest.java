package aether.runtime.ir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class OpGraphTest {

    private static OpGraph.Builder sample() {
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", TensorType.of(DType.F32, 2, 3)));
        int w = b.add(new Op.Input("w", TensorType.of(DType.F32, 4, 3)));
        int unused = b.add(new Op.Unary(Op.UnaryFn.EXP), x);
        int y = b.add(new Op.MatMul(true), x, w);
        b.add(new Op.Softmax(0.5, 0), y);
        return b;
    }

    @Test
    void dumpShowsOneLinePerNodeWithAttributesInputsAndTypes() {
        String dump = sample().build(List.of(4)).dump();
        assertThat(dump).isEqualTo("""
                %0 = input{label=x, type=f32[2, 3]}() : f32[2, 3]
                %1 = input{label=w, type=f32[4, 3]}() : f32[4, 3]
                %2 = exp{fn=EXP}(%0) : f32[2, 3]
                %3 = matmul_t{transposeB=true}(%0, %1) : f32[2, 4]
                %4 = softmax{scale=0.5, softCap=0.0}(%3) : f32[2, 4]
                outputs: %4
                """);
    }

    @Test
    void pruneDropsDeadNodesAndRenumbers() {
        OpGraph.Pruned p = sample().build(List.of(4)).prune();
        assertThat(p.graph().size()).isEqualTo(4);
        assertThat(p.mapping()).containsExactly(0, 1, -1, 2, 3);
        assertThat(p.graph().outputs()).containsExactly(3);
        assertThat(p.graph().node(2).inputs()).containsExactly(0, 1);
    }

    @Test
    void constructorRejectsGraphsAPassCouldBreak() {
        OpGraph ok = sample().build(List.of(4));
        List<Node> nodes = new java.util.ArrayList<>(ok.nodes());
        Node mm = nodes.get(3);
        nodes.set(3, new Node(3, mm.op(), List.of(0, 4), mm.type()));
        assertThatThrownBy(() -> new OpGraph(nodes, List.of(4))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("node 3 (matmul_t) reads node 4").hasMessageContaining("topological");
        List<Node> wrongType = new java.util.ArrayList<>(ok.nodes());
        wrongType.set(3, new Node(3, mm.op(), mm.inputs(), TensorType.of(DType.F32, 2, 5)));
        assertThatThrownBy(() -> new OpGraph(wrongType, List.of(4)))
                .hasMessageContaining("declares type f32[2, 5] but its op infers f32[2, 4]");
        assertThatThrownBy(() -> new OpGraph(ok.nodes(), List.of(9))).hasMessageContaining("output 9");
    }

    @Test
    void graphsAreValuesThatPassesCanRebuild() {
        OpGraph a = sample().build(List.of(4));
        OpGraph b = new OpGraph(a.nodes(), a.outputs());
        assertThat(b).isEqualTo(a);
        assertThat(b.hashCode()).isEqualTo(a.hashCode());
        assertThat(new Op.Permute(List.of(1, 0))).isEqualTo(new Op.Permute(List.of(1, 0)));
        assertThat(Shape.of(2, 3)).isEqualTo(Shape.of(2, 3)).isNotEqualTo(Shape.of(3, 2));
    }
}
