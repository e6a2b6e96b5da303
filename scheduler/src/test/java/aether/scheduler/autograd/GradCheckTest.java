package aether.scheduler.autograd;

import static aether.scheduler.autograd.GradCheck.Values.AWAY_FROM_ZERO;
import static aether.scheduler.autograd.GradCheck.Values.GAUSSIAN;
import static aether.scheduler.autograd.GradCheck.Values.POSITIVE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.exec.SegmentWeightRows;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every differentiable op, and composite graphs, against central differences in float64. */
class GradCheckTest {

    private record Case(String name, List<Shape> shapes, GradCheck.Values values, GradCheck.Function f) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static Case c(String name, GradCheck.Values v, GradCheck.Function f, Shape... shapes) {
        return new Case(name, List.of(shapes), v, f);
    }

    private static Shape s(int... d) {
        return Shape.of(d);
    }

    static Stream<Arguments> ops() {
        return Stream.of(
                c("add broadcast", GAUSSIAN, (g, x) -> x.get(0).add(x.get(1)), s(2, 1, 3), s(4, 1)),
                c("sub broadcast", GAUSSIAN, (g, x) -> x.get(0).sub(x.get(1)), s(2, 3), s(3)),
                c("mul broadcast", GAUSSIAN, (g, x) -> x.get(0).mul(x.get(1)), s(3, 1), s(2, 1, 4)),
                c("div broadcast", POSITIVE, (g, x) -> x.get(0).div(x.get(1)), s(2, 3), s(2, 1)),
                c("pow tensor", POSITIVE, (g, x) -> x.get(0).pow(x.get(1)), s(2, 3), s(3)),
                c("mul self", GAUSSIAN, (g, x) -> x.get(0).mul(x.get(0)), s(5)),
                c("neg", GAUSSIAN, (g, x) -> x.get(0).neg(), s(2, 3)),
                c("abs", AWAY_FROM_ZERO, (g, x) -> x.get(0).abs(), s(2, 3)),
                c("exp", GAUSSIAN, (g, x) -> x.get(0).exp(), s(2, 3)),
                c("log", POSITIVE, (g, x) -> x.get(0).log(), s(2, 3)),
                c("sqrt", POSITIVE, (g, x) -> x.get(0).sqrt(), s(2, 3)),
                c("rsqrt", POSITIVE, (g, x) -> x.get(0).rsqrt(), s(2, 3)),
                c("tanh", GAUSSIAN, (g, x) -> x.get(0).tanh(), s(2, 3)),
                c("sigmoid", GAUSSIAN, (g, x) -> x.get(0).sigmoid(), s(2, 3)),
                c("relu", AWAY_FROM_ZERO, (g, x) -> x.get(0).relu(), s(2, 3)),
                c("gelu", GAUSSIAN, (g, x) -> x.get(0).gelu(), s(2, 3)),
                c("silu", GAUSSIAN, (g, x) -> x.get(0).silu(), s(2, 3)),
                c("pow scalar", POSITIVE, (g, x) -> x.get(0).pow(2.5), s(2, 3)),
                c("clamp", AWAY_FROM_ZERO, (g, x) -> x.get(0).clamp(-0.5, 0.5), s(3, 4)),
                c("scale", GAUSSIAN, (g, x) -> x.get(0).scale(-1.75), s(2, 3)),
                c("scalar operands", POSITIVE, (g, x) -> x.get(0).add(1.5).div(2).sub(0.25), s(4)),
                c("cast f32 round trip", GAUSSIAN, (g, x) -> x.get(0).cast(DType.F32).mul(x.get(0).cast(DType.F32))
                        .cast(DType.F64), s(2, 3)),
                c("sum axis", GAUSSIAN, (g, x) -> x.get(0).sum(1), s(2, 3, 4)),
                c("sum keepdims", GAUSSIAN, (g, x) -> x.get(0).sum(-1, true), s(2, 3, 4)),
                c("mean axis", GAUSSIAN, (g, x) -> x.get(0).mean(0), s(2, 3, 4)),
                c("max axis", GAUSSIAN, (g, x) -> x.get(0).max(1), s(3, 5)),
                c("max keepdims", GAUSSIAN, (g, x) -> x.get(0).max(0, true), s(4, 3)),
                c("sumAll", GAUSSIAN, (g, x) -> x.get(0).mul(x.get(0)).sumAll(), s(2, 3)),
                c("meanAll", GAUSSIAN, (g, x) -> x.get(0).meanAll(), s(2, 3)),
                c("matmul", GAUSSIAN, (g, x) -> x.get(0).matmul(x.get(1)), s(2, 3), s(3, 4)),
                c("matmul batched broadcast", GAUSSIAN, (g, x) -> x.get(0).matmul(x.get(1)), s(2, 1, 2, 3),
                        s(3, 3, 2)),
                c("matmulT", GAUSSIAN, (g, x) -> x.get(0).matmulT(x.get(1)), s(2, 3), s(4, 3)),
                c("matmulT batched", GAUSSIAN, (g, x) -> x.get(0).matmulT(x.get(1)), s(2, 2, 3), s(2, 4, 3)),
                c("matmulT constant f16 weight rows", GAUSSIAN, (g, x) -> x.get(0).cast(DType.F32).matmulT(
                        g.weight(SegmentWeightRows.ofF16(new float[] {0.5f, -1, 2, 0.25f, 1.5f, -0.75f}, 2, 3)))
                        .cast(DType.F64), s(4, 3)),
                c("matmul constant f32 weight rows", GAUSSIAN, (g, x) -> x.get(0).cast(DType.F32).matmul(
                        g.weight(SegmentWeightRows.ofF32(new float[] {0.5f, -1, 2, 0.25f, 1.5f, -0.75f}, 2, 3)))
                        .cast(DType.F64), s(2, 2, 2)),
                c("softmax", GAUSSIAN, (g, x) -> x.get(0).softmax(-1), s(3, 5)),
                c("softmax axis 0", GAUSSIAN, (g, x) -> x.get(0).softmax(0), s(3, 4)),
                c("softmax mask scale softcap", GAUSSIAN, (g, x) -> x.get(0).softmax(x.get(1), 0.7, 1.5),
                        s(2, 3, 5), s(3, 5)),
                c("softmax causal mask", GAUSSIAN, (g, x) -> x.get(0).softmax(g.causalMask(3, 4, 0, DType.F64), 1.3,
                        0), s(2, 3, 4)),
                c("rms_norm", GAUSSIAN, (g, x) -> x.get(0).rmsNorm(1e-5), s(3, 6)),
                c("layer_norm", GAUSSIAN, (g, x) -> x.get(0).layerNorm(1e-5), s(3, 6)),
                c("rope normal partial", GAUSSIAN, (g, x) -> x.get(0).rope(g.indices(new int[] {0, 3, 7},
                        s(3)), Op.RopeMode.NORMAL, 4, 10000, 1), s(3, 2, 6)),
                c("rope neox freq scale", GAUSSIAN, (g, x) -> x.get(0).rope(g.indices(new int[] {2, 5, 11},
                        s(3)), Op.RopeMode.NEOX, 6, 500, 0.25), s(2, 3, 2, 8)),
                c("rope freq factors", GAUSSIAN, (g, x) -> x.get(0).rope(g.indices(new int[] {1, 9}, s(2)),
                        g.tensor(new double[] {1, 2.5, 8}, s(3), DType.F64), Op.RopeMode.NEOX, 6, 1e4, 1), s(2, 2, 6)),
                c("get_rows repeated ids", GAUSSIAN, (g, x) -> x.get(0).getRows(g.indices(new int[] {2, 0, 2, 3},
                        s(2, 2))), s(4, 3)),
                c("scatter_add_rows", GAUSSIAN, (g, x) -> g.apply(new Op.ScatterAddRows(5), x.get(0),
                        g.indices(new int[] {1, 4, 1}, s(3))), s(3, 2)),
                c("attention gqa", GAUSSIAN, (g, x) -> x.get(0).attention(x.get(1), x.get(2), 0.6, 0),
                        s(4, 3, 2), s(2, 5, 2), s(2, 5, 3)),
                c("attention sliding window batched", GAUSSIAN, (g, x) -> x.get(0).attention(x.get(1), x.get(2),
                        0.8, 2), s(2, 2, 4, 3), s(2, 1, 4, 3), s(2, 1, 4, 3)),
                c("attention soft-capped", GAUSSIAN, (g, x) -> x.get(0).attention(x.get(1), x.get(2), 1.2, 0, 1.5),
                        s(2, 3, 4), s(1, 3, 4), s(1, 3, 2)),
                c("attention q k v one tensor", GAUSSIAN, (g, x) -> x.get(0).attention(x.get(0), x.get(0), 0.5, 0),
                        s(2, 3, 2)),
                c("reshape", GAUSSIAN, (g, x) -> x.get(0).reshape(3, -1).mul(x.get(1)), s(2, 3, 2), s(4)),
                c("permute", GAUSSIAN, (g, x) -> x.get(0).permute(2, 0, 1).mul(x.get(1)), s(2, 3, 4), s(4, 2, 3)),
                c("transpose", GAUSSIAN, (g, x) -> x.get(0).transpose(0, 1), s(2, 3)),
                c("expand", GAUSSIAN, (g, x) -> x.get(0).expand(2, 3, 4), s(3, 1)),
                c("concat", GAUSSIAN, (g, x) -> x.get(0).concat(1, x.get(1), x.get(0)), s(2, 1, 3), s(2, 2, 3)),
                c("slice", GAUSSIAN, (g, x) -> x.get(0).slice(-1, 1, 3), s(2, 4)),
                c("pad", GAUSSIAN, (g, x) -> x.get(0).pad(0, 1, 2), s(2, 3))
        ).map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ops")
    void shouldMatchCentralDifferences(Case c) {
        GradCheck.check(c.name(), c.shapes(), c.values(), c.name().hashCode(), c.f());
        CASES_RUN.incrementAndGet();
    }

    private static final java.util.concurrent.atomic.AtomicInteger CASES_RUN =
            new java.util.concurrent.atomic.AtomicInteger();

    @org.junit.jupiter.api.AfterAll
    static void everyDifferentiableOpWasChecked() {
        if (CASES_RUN.get() != ops().count()) {
            return;   // a filtered run (one case from an IDE) cannot judge coverage
        }
        java.util.Set<String> expected = new java.util.TreeSet<>(List.of("pow", "clamp", "scale", "cast", "matmul",
                "matmul_t", "softmax", "rms_norm", "layer_norm", "rope", "get_rows", "scatter_add_rows", "attention",
                "reshape", "permute", "expand", "concat", "slice", "pad"));
        for (Op.UnaryFn fn : Op.UnaryFn.values()) {
            if (fn != Op.UnaryFn.SIGN && fn != Op.UnaryFn.STEP && fn != Op.UnaryFn.GELU_DERIV
                    && fn != Op.UnaryFn.SILU_DERIV) {
                expected.add(new Op.Unary(fn).name());
            }
        }
        for (Op.BinaryFn fn : Op.BinaryFn.values()) {
            if (fn != Op.BinaryFn.EQ) {
                expected.add(new Op.Binary(fn).name());
            }
        }
        for (Op.ReduceFn fn : Op.ReduceFn.values()) {
            expected.add(new Op.Reduce(fn, 0, false).name());
        }
        // 27 op records: the 17 named above by record plus Unary, Binary, Reduce, and the 6 non-differentiable
        // Input, Full, CausalMask, ArgMax and the inference-only KvStore, PagedAttention. A new op fails here until it
        // has a gradcheck case.
        assertThat(Op.class.getPermittedSubclasses()).hasSize(27);
        assertThat(GradCheck.COVERED).containsAll(expected);
    }

    @Test
    void shouldMatchCentralDifferencesThroughAnMlp() {
        // x[5, 4] -> linear(6) + bias -> gelu -> linear(3) + bias -> log-softmax picked by one-hot targets.
        GradCheck.check("mlp", List.of(s(5, 4), s(6, 4), s(6), s(3, 6), s(3)), GAUSSIAN, 7, (g, p) -> {
            Tensor h = p.get(0).linear(p.get(1), p.get(2)).gelu();
            Tensor logits = h.linear(p.get(3), p.get(4));
            Tensor logp = logits.softmax(-1).log();
            double[] onehot = new double[15];
            for (int i = 0; i < 5; i++) onehot[i * 3 + i % 3] = 1;
            return logp.mul(g.tensor(onehot, s(5, 3), DType.F64)).sum(-1).neg();
        });
    }

    @Test
    void shouldMatchCentralDifferencesThroughAnAttentionBlock() {
        // Pre-norm attention block: x[T=4, D=8], 4 query heads, 2 kv heads of size 2, rope on positions, residual.
        int t = 4;
        GradCheck.check("attention block", List.of(s(t, 8), s(8), s(8, 8), s(4, 8), s(4, 8), s(8, 8)), GAUSSIAN, 11,
                (g, p) -> {
                    Tensor x = p.get(0);
                    Tensor n = x.rmsNorm(p.get(1), 1e-6);
                    Tensor pos = g.indices(new int[] {3, 4, 5, 6}, s(t));
                    Tensor q = n.linear(p.get(2)).reshape(t, 4, 2).rope(pos, Op.RopeMode.NEOX, 2, 10000, 1);
                    Tensor k = n.linear(p.get(3)).reshape(t, 2, 2).rope(pos, Op.RopeMode.NEOX, 2, 10000, 1);
                    Tensor v = n.linear(p.get(4)).reshape(t, 2, 2);
                    Tensor a = q.permute(1, 0, 2).attention(k.permute(1, 0, 2), v.permute(1, 0, 2),
                            1 / Math.sqrt(2), 3);
                    return x.add(a.permute(1, 0, 2).reshape(t, 8).linear(p.get(5)));
                });
    }

    @Test
    void shouldReturnZerosForALeafTheOutputDoesNotUse() {
        Graph g = new Graph();
        Tensor a = g.tensor(new float[] {1, 2}, s(2));
        Tensor b = g.tensor(new float[] {3, 4}, s(2));
        Gradients grads = a.mul(a).sumAll().backward();
        assertThat(grads.has(b)).isFalse();
        assertThat(grads.of(b).toFloatArray(new ReferenceExecutor())).containsExactly(0f, 0f);
        assertThat(grads.of(a).toFloatArray(new ReferenceExecutor())).containsExactly(2f, 4f);
    }

    @Test
    void shouldRejectGradientsOfIndicesAndNonScalarOutputs() {
        Graph g = new Graph();
        Tensor table = g.tensor(new float[] {1, 2, 3, 4}, s(2, 2));
        Tensor ids = g.indices(new int[] {1, 0}, s(2));
        Tensor rows = table.getRows(ids);
        assertThatThrownBy(rows::backward).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("scalar");
        Gradients grads = rows.sumAll().backward();
        assertThatThrownBy(() -> grads.of(ids)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("i32").hasMessageContaining("differentiable");
        assertThat(grads.of(table).toFloatArray(new ReferenceExecutor())).containsExactly(1f, 1f, 1f, 1f);
    }
}
