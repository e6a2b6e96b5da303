package aether.scheduler.graph;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import org.junit.jupiter.api.Test;

/** Building graphs through the chaining API: inference at build time, axis handling, leaves, dumps. */
class GraphTest {

    private final ReferenceExecutor executor = new ReferenceExecutor();

    @Test
    void shapesAreInferredWhileChaining() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(4, 8), DType.F32);
        Tensor w = g.input("w", Shape.of(16, 8), DType.F32);
        Tensor h = x.linear(w).gelu();
        assertThat(h.shape()).isEqualTo(Shape.of(4, 16));
        assertThat(h.reshape(2, -1, 4).shape()).isEqualTo(Shape.of(2, 8, 4));
        assertThat(h.view(64).shape()).isEqualTo(Shape.of(64));
        assertThat(h.transpose(0, -1).shape()).isEqualTo(Shape.of(16, 4));
        assertThat(h.sum(-1, true).shape()).isEqualTo(Shape.of(4, 1));
        assertThat(h.contiguous()).isSameAs(h);
        assertThat(h.cast(DType.BF16).dtype()).isEqualTo(DType.BF16);
    }

    @Test
    void brokenRulesFailAtBuildTimeNamingOpShapesAndRule() {
        Graph g = new Graph();
        Tensor a = g.input("a", Shape.of(2, 3), DType.F32);
        Tensor b = g.input("b", Shape.of(4, 5), DType.F32);
        int before = g.size();
        assertThatThrownBy(() -> a.matmul(b)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("matmul(f32[2, 3], f32[4, 5]): inner dimensions must agree");
        assertThatThrownBy(() -> a.add(b)).hasMessageStartingWith("add(f32[2, 3], f32[4, 5]): shapes must broadcast");
        assertThatThrownBy(() -> a.softmax(2)).hasMessageStartingWith("softmax(f32[2, 3]): axis 2 out of range");
        assertThatThrownBy(() -> a.reshape(4, -1)).hasMessageContaining("do not divide");
        assertThat(g.size()).as("failed ops add no nodes").isEqualTo(before);
        Graph other = new Graph();
        assertThatThrownBy(() -> a.add(other.input("c", Shape.of(3), DType.F32)))
                .hasMessageContaining("belongs to another graph");
    }

    @Test
    void softmaxAlongAnyAxisNormalizesThatAxis() {
        Graph g = new Graph();
        Tensor x = g.tensor(new float[] {1, 2, 3, 4, 5, 6}, Shape.of(2, 3));
        float[] cols = x.softmax(0).toFloatArray(executor);
        for (int j = 0; j < 3; j++) {
            assertThat(cols[j] + cols[3 + j]).isCloseTo(1f, org.assertj.core.api.Assertions.within(1e-6f));
            assertThat((double) cols[3 + j]).isCloseTo(1 / (1 + Math.exp(-3)),
                    org.assertj.core.api.Assertions.within(1e-6));
        }
    }

    @Test
    void halfPrecisionLeavesAreRoundedToTheirType() {
        Graph g = new Graph();
        Tensor h = g.tensor(new float[] {1.0001f, 3.14159f}, Shape.of(2), DType.F16);
        Tensor b = g.tensor(new float[] {1.0001f, 3.14159f}, Shape.of(2), DType.BF16);
        assertThat(h.dtype()).isEqualTo(DType.F16);
        assertThat(h.toFloatArray(executor)).containsExactly(1f, Float.float16ToFloat(Float.floatToFloat16(3.14159f)));
        assertThat(b.toFloatArray(executor)).containsExactly(1f, 3.140625f);
    }

    @Test
    void leavesCanBeRebound() {
        Graph g = new Graph();
        Tensor x = g.tensor(new float[] {1, 2}, Shape.of(2));
        Tensor y = x.mul(x).sumAll();
        assertThat(y.toFloatArray(executor)).containsExactly(5f);
        g.set(x, HostTensor.ofFloats(new float[] {3, 4}, Shape.of(2)));
        assertThat(y.toFloatArray(executor)).containsExactly(25f);
        assertThatThrownBy(() -> g.set(y, HostTensor.ofFloats(new float[] {1}, Shape.SCALAR)))
                .hasMessageContaining("not an input leaf");
    }

    @Test
    void opGraphHoldsOnlyWhatTheOutputsNeed() {
        Graph g = new Graph();
        Tensor x = g.tensor(new float[] {1, 2, 3}, Shape.of(3));
        x.exp();   // dead
        Tensor y = x.scale(2).sumAll();
        OpGraph ir = g.toOpGraph(y);
        assertThat(ir.nodes()).extracting(n -> n.op().name()).containsExactly("input", "scale", "sum");
        assertThat(ir.dump()).contains("%1 = scale{factor=2.0}(%0) : f32[3]").endsWith("outputs: %2\n");
        assertThat(g.dump()).contains("exp{fn=EXP}(%0)");
        assertThat(ir.node(2).op()).isEqualTo(new Op.Reduce(Op.ReduceFn.SUM, 0, false));
    }
}
