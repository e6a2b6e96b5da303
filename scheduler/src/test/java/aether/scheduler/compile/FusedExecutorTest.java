package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Evaluation;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The Graph API evaluated through compiled, fused execution: same bits as the reference executor. */
class FusedExecutorTest {

    @Test
    void graphEvaluationMatchesTheReferenceAndReusesTheCompiledGraph() {
        Random rnd = new Random(31);
        Graph g = new Graph();
        Tensor x = g.tensor(Models.randomFloats(4 * 8, rnd), Shape.of(4, 8));
        Tensor w = g.tensor(Models.randomFloats(6 * 8, rnd), Shape.of(6, 8));
        Tensor b = g.tensor(Models.randomFloats(6, rnd), Shape.of(6));
        Tensor h = x.linear(w, b).gelu();
        Tensor y = h.softmax(-1);
        Tensor s = h.sumAll();
        try (FusedExecutor fused = new FusedExecutor()) {
            for (int round = 0; round < 3; round++) {
                Evaluation e = g.evaluate(fused, y, s);
                Evaluation r = g.evaluate(new ReferenceExecutor(), y, s);
                assertThat(e.floats(y)).isEqualTo(r.floats(y));
                assertThat(e.floats(s)).isEqualTo(r.floats(s));
                g.set(x, HostTensor.ofFloats(Models.randomFloats(32, rnd), Shape.of(4, 8)));   // new input values
            }
        }
    }

    @Test
    void unsupportedGraphsFailTheStageWithTheCompilersMessage() {
        Graph g = new Graph();
        Tensor x = g.tensor(new double[] {1, 2}, Shape.of(2), DType.F16);
        try (FusedExecutor fused = new FusedExecutor()) {
            assertThatThrownBy(() -> g.evaluate(fused, x.exp())).hasMessageContaining("expected: f32");
        }
    }
}
