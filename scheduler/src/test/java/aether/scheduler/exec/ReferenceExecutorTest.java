package aether.scheduler.exec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.scheduler.graph.Evaluation;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleUnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Elementwise, reduction, matmul, layout and cast semantics of the reference executor, and its failure behaviour. */
class ReferenceExecutorTest {

    private final ReferenceExecutor f64 = new ReferenceExecutor(ReferenceExecutor.Precision.FLOAT64);
    private final ReferenceExecutor declared = new ReferenceExecutor();

    private static double[] gaussian(Random rnd, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = rnd.nextGaussian() * 2;
        return v;
    }

    private static DoubleUnaryOperator definition(Op.UnaryFn fn) {
        return switch (fn) {
            case NEG -> x -> -x;
            case ABS -> Math::abs;
            case EXP -> Math::exp;
            case LOG -> Math::log;
            case SQRT -> Math::sqrt;
            case RSQRT -> x -> Math.pow(x, -0.5);
            case TANH -> Math::tanh;
            case SIGMOID -> x -> 1 / (1 + Math.exp(-x));
            case RELU -> x -> Math.max(x, 0);
            case GELU -> x -> 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
            case SILU -> x -> x / (1 + Math.exp(-x));
            case SIGN -> Math::signum;
            case STEP -> x -> x > 0 ? 1 : 0;
            case GELU_DERIV -> x -> (definition(Op.UnaryFn.GELU).applyAsDouble(x + 1e-6)
                    - definition(Op.UnaryFn.GELU).applyAsDouble(x - 1e-6)) / 2e-6;
            case SILU_DERIV -> x -> (definition(Op.UnaryFn.SILU).applyAsDouble(x + 1e-6)
                    - definition(Op.UnaryFn.SILU).applyAsDouble(x - 1e-6)) / 2e-6;
        };
    }

    @ParameterizedTest
    @EnumSource(Op.UnaryFn.class)
    void unaryOpsMatchTheirDefinitions(Op.UnaryFn fn) {
        Random rnd = new Random(fn.ordinal());
        double[] x = gaussian(rnd, 64);
        if (fn == Op.UnaryFn.LOG || fn == Op.UnaryFn.SQRT || fn == Op.UnaryFn.RSQRT) {
            for (int i = 0; i < x.length; i++) x[i] = Math.abs(x[i]) + 0.01;
        }
        Graph g = new Graph();
        double[] y = g.tensor(x, Shape.of(8, 8), DType.F64).unary(fn).toDoubleArray(f64);
        double tol = fn == Op.UnaryFn.GELU_DERIV || fn == Op.UnaryFn.SILU_DERIV ? 1e-8 : 1e-12;
        for (int i = 0; i < x.length; i++) {
            double e = definition(fn).applyAsDouble(x[i]);
            assertThat(y[i]).as("%s(%s)", fn, x[i]).isCloseTo(e, within(tol * Math.max(1, Math.abs(e))));
        }
    }

    @Test
    void binaryOpsBroadcastLikeNumpy() {
        Random rnd = new Random(3);
        double[] a = gaussian(rnd, 2 * 1 * 4);
        double[] b = gaussian(rnd, 3 * 1);
        for (int i = 0; i < b.length; i++) b[i] = Math.abs(b[i]) + 0.5;
        Graph g = new Graph();
        Tensor ta = g.tensor(a, Shape.of(2, 1, 4), DType.F64);
        Tensor tb = g.tensor(b, Shape.of(3, 1), DType.F64);
        Tensor[] outs = {ta.add(tb), ta.sub(tb), ta.mul(tb), ta.div(tb), tb.pow(ta), ta.eq(ta.add(tb).sub(tb))};
        Evaluation ev = g.evaluate(f64, outs);
        for (Tensor t : outs) {
            assertThat(t.shape()).isEqualTo(Shape.of(2, 3, 4));
        }
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 3; j++) {
                for (int k = 0; k < 4; k++) {
                    int o = (i * 3 + j) * 4 + k;
                    double x = a[i * 4 + k];
                    double y = b[j];
                    assertThat(ev.doubles(outs[0])[o]).isEqualTo(x + y);
                    assertThat(ev.doubles(outs[1])[o]).isEqualTo(x - y);
                    assertThat(ev.doubles(outs[2])[o]).isEqualTo(x * y);
                    assertThat(ev.doubles(outs[3])[o]).isEqualTo(x / y);
                    assertThat(ev.doubles(outs[4])[o]).isEqualTo(Math.pow(y, x));
                    assertThat(ev.doubles(outs[5])[o]).isEqualTo((x + y) - y == x ? 1 : 0);
                }
            }
        }
    }

    @Test
    void reductionsAndArgmaxFollowTheAxis() {
        double[] x = {1, 5, 3, /**/ 4, 2, 6};
        Graph g = new Graph();
        Tensor t = g.tensor(x, Shape.of(2, 3), DType.F64);
        Tensor sum0 = t.sum(0);
        Tensor mean1 = t.mean(1, true);
        Tensor max1 = t.max(-1);
        Tensor arg0 = t.argmax(0);
        Tensor arg1 = t.argmax(1);
        Tensor all = t.sumAll();
        Evaluation ev = g.evaluate(f64, sum0, mean1, max1, arg0, arg1, all);
        assertThat(ev.doubles(sum0)).containsExactly(5, 7, 9);
        assertThat(mean1.shape()).isEqualTo(Shape.of(2, 1));
        assertThat(ev.doubles(mean1)).containsExactly(3, 4);
        assertThat(ev.doubles(max1)).containsExactly(5, 6);
        assertThat(ev.value(arg0).toIntArray()).containsExactly(1, 0, 1);
        assertThat(ev.value(arg1).toIntArray()).containsExactly(1, 2);
        assertThat(arg1.dtype()).isEqualTo(DType.I32);
        assertThat(all.shape()).isEqualTo(Shape.SCALAR);
        assertThat(ev.scalar(all)).isEqualTo(21);
    }

    @Test
    void batchedMatmulBroadcastsAndMatmulTUsesRowsOfB() {
        Random rnd = new Random(5);
        int m = 3, k = 4, n = 2;
        double[] a = gaussian(rnd, 2 * 1 * m * k);
        double[] b = gaussian(rnd, 3 * k * n);
        Graph g = new Graph();
        Tensor ta = g.tensor(a, Shape.of(2, 1, m, k), DType.F64);
        Tensor tb = g.tensor(b, Shape.of(3, k, n), DType.F64);
        Tensor c = ta.matmul(tb);
        Tensor ct = ta.matmulT(tb.transpose(-1, -2));
        assertThat(c.shape()).isEqualTo(Shape.of(2, 3, m, n));
        Evaluation ev = g.evaluate(f64, c, ct);
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 3; j++) {
                for (int r = 0; r < m; r++) {
                    for (int col = 0; col < n; col++) {
                        double e = 0;
                        for (int p = 0; p < k; p++) e += a[(i * m + r) * k + p] * b[(j * k + p) * n + col];
                        int o = ((i * 3 + j) * m + r) * n + col;
                        assertThat(ev.doubles(c)[o]).isCloseTo(e, within(1e-12));
                        assertThat(ev.doubles(ct)[o]).isCloseTo(e, within(1e-12));
                    }
                }
            }
        }
    }

    @Test
    void quantizedWeightIsReadRowByRowOncePerEvaluation() {
        Random rnd = new Random(9);
        int out = 5, in = 64, tokens = 3;
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) w[i] = (float) rnd.nextGaussian();
        CountingRows rows = new CountingRows(Q8_0TestCodec.weight(w, out, in));
        float[] deq = new float[in];
        double[][] wq = new double[out][in];
        for (int r = 0; r < out; r++) {
            rows.row(r, deq);
            for (int c = 0; c < in; c++) {
                wq[r][c] = deq[c];
                assertThat(wq[r][c]).as("Q8_0 keeps values within half a step").isCloseTo(w[r * in + c],
                        within(0.5 / 127 * 4.5 + 1e-3));
            }
        }
        rows.reads = 0;
        float[] x = new float[tokens * in];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();

        Graph g = new Graph();
        Tensor weight = g.weight(rows);
        assertThat(weight.dtype().isQuantized()).isTrue();
        Tensor y = g.tensor(x, Shape.of(tokens, in)).linear(weight);
        Tensor twice = y.scale(2);
        Tensor emb = weight.getRows(g.indices(new int[] {4, 0}, Shape.of(2)));
        Evaluation ev = g.evaluate(declared, y, twice, emb);
        assertThat(rows.reads).as("rows decoded: matmul once (shared by both outputs), get_rows 2").isEqualTo(
                out + 2);
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < out; r++) {
                double e = 0;
                for (int c = 0; c < in; c++) e += x[t * in + c] * wq[r][c];
                assertThat((double) ev.floats(y)[t * out + r]).isCloseTo(e, within(1e-5 * Math.max(1, Math.abs(e))));
                assertThat(ev.floats(twice)[t * out + r]).isEqualTo(2 * ev.floats(y)[t * out + r]);
            }
        }
        for (int c = 0; c < in; c++) {
            assertThat((double) ev.floats(emb)[c]).isEqualTo(wq[4][c]);
            assertThat((double) ev.floats(emb)[in + c]).isEqualTo(wq[0][c]);
        }
    }

    @Test
    void quantizedRightOperandWithoutTransposeAccumulatesRowsAndPassesGradientsToTheLeft() {
        Random rnd = new Random(21);
        int k = 3, n = 64, m = 2;
        float[] w = new float[k * n];
        for (int i = 0; i < w.length; i++) w[i] = (float) rnd.nextGaussian();
        CodecWeightRows rows = Q8_0TestCodec.weight(w, k, n);
        float[] deq = new float[k * n];
        float[] row = new float[n];
        for (int r = 0; r < k; r++) {
            rows.row(r, row);
            System.arraycopy(row, 0, deq, r * n, n);
        }
        float[] x = {0.5f, -1, 2, 1.5f, 0.25f, -0.75f};
        Graph g = new Graph();
        Tensor tx = g.tensor(x, Shape.of(m, k));
        Tensor weight = g.weight(rows);
        Tensor c = g.tensor(java.util.Arrays.copyOf(w, m * n), Shape.of(m, n));   // fixed weights for the loss
        Tensor y = tx.matmul(weight);
        aether.scheduler.autograd.Gradients grads = y.mul(c).sumAll().backward();
        Evaluation ev = g.evaluate(declared, y, grads.of(tx));
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double e = 0;
                for (int p = 0; p < k; p++) e += x[i * k + p] * deq[p * n + j];
                assertThat((double) ev.floats(y)[i * n + j]).isCloseTo(e, within(1e-5));
            }
            for (int p = 0; p < k; p++) {
                double e = 0;   // d/dx[i,p] sum_j c[i,j] (x w)[i,j] = sum_j c[i,j] w[p,j]
                for (int j = 0; j < n; j++) e += w[i * n + j] * deq[p * n + j];
                assertThat((double) ev.floats(grads.of(tx))[i * k + p]).isCloseTo(e, within(1e-4));
            }
        }
        assertThatThrownBy(() -> grads.of(weight)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("q8_0[3, 64]").hasMessageContaining("constants");
    }

    @Test
    void unquantizedWeightRowsAlsoServeElementwiseOps() {
        Graph g = new Graph();
        Tensor w = g.weight(SegmentWeightRows.ofF16(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
        assertThat(w.dtype()).isEqualTo(DType.F16);
        Tensor y = w.cast(DType.F32).add(g.tensor(new float[] {10, 20, 30}, Shape.of(3)));
        assertThat(y.toFloatArray(declared)).containsExactly(11, 22, 33, 14, 25, 36);
        Tensor bf = g.weight(new SegmentWeightRows(aether.runtime.tensor.GgmlType.BF16,
                java.lang.foreign.MemorySegment.ofArray(new short[] {(short) 0x3fc0, (short) 0xc000}), 1, 2));
        assertThat(bf.cast(DType.F32).toFloatArray(declared)).containsExactly(1.5f, -2f);
    }

    @Test
    void layoutOpsMoveElementsWhereNumpyWould() {
        double[] x = new double[24];
        for (int i = 0; i < x.length; i++) x[i] = i;
        Graph g = new Graph();
        Tensor t = g.tensor(x, Shape.of(2, 3, 4), DType.F64);
        Tensor perm = t.permute(2, 0, 1);
        Tensor cat = t.slice(1, 0, 1).concat(1, t.slice(1, 2, 3));
        Tensor pad = t.slice(2, 1, 2).pad(2, 1, 1);
        Tensor exp = g.tensor(new double[] {7, 8}, Shape.of(2, 1), DType.F64).expand(3, 2, 2);
        Evaluation ev = g.evaluate(f64, perm, cat, pad, exp);
        double[] p = ev.doubles(perm);
        for (int a = 0; a < 4; a++) {
            for (int b = 0; b < 2; b++) {
                for (int c = 0; c < 3; c++) {
                    assertThat(p[(a * 2 + b) * 3 + c]).isEqualTo(x[(b * 3 + c) * 4 + a]);
                }
            }
        }
        assertThat(ev.doubles(cat)).containsExactly(0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23);
        assertThat(pad.shape()).isEqualTo(Shape.of(2, 3, 3));
        assertThat(ev.doubles(pad)).containsExactly(0, 1, 0, 0, 5, 0, 0, 9, 0, 0, 13, 0, 0, 17, 0, 0, 21, 0);
        assertThat(ev.doubles(exp)).containsExactly(7, 7, 8, 8, 7, 7, 8, 8, 7, 7, 8, 8);
    }

    @Test
    void declaredPrecisionRoundsEachOpAndCastsRoundToNearestEven() {
        Graph g = new Graph();
        double third = 1.0 / 3;
        Tensor x = g.tensor(new float[] {1, 3, 65504, 70000}, Shape.of(4));
        Tensor div = g.scalar(1, DType.F32).div(x);
        Tensor h = x.div(7).cast(DType.F16);
        Tensor bf = x.div(7).cast(DType.BF16);
        Evaluation ev = g.evaluate(declared, div, h, bf);
        assertThat(ev.doubles(div)[1]).isEqualTo((double) (float) third).isNotEqualTo(third);
        float[] x7 = {1f / 7, 3f / 7, 65504f / 7, 70000f / 7};
        for (int i = 0; i < 4; i++) {
            assertThat(ev.floats(h)[i]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(x7[i])));
            assertThat(Float.floatToRawIntBits(ev.floats(bf)[i]) & 0xffff).isZero();
            assertThat((double) ev.floats(bf)[i]).isCloseTo((double) x7[i], within(Math.abs(x7[i]) / 256.0));
        }
        assertThat(Float.isInfinite(g.tensor(new float[] {70000}, Shape.of(1)).cast(DType.F16)
                .toFloatArray(declared)[0])).isTrue();
        assertThat(div.toDoubleArray(f64)[1]).isEqualTo(third);
    }

    @Test
    void failuresNameTheNodeAndWhatWasExpected() {
        Graph g = new Graph();
        Tensor table = g.tensor(new float[6], Shape.of(3, 2));
        Tensor bad = table.getRows(g.indices(new int[] {1, 3}, Shape.of(2)));
        assertThatThrownBy(() -> bad.toFloatArray(declared)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("row id 3 out of range (expected: 0..2)");
        Tensor placeholder = g.input("tokens", Shape.of(4), DType.I32);
        assertThatThrownBy(() -> table.getRows(placeholder).toFloatArray(declared))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("'tokens' i32[4] has no value");
        assertThatThrownBy(() -> g.set(placeholder, HostTensor.ofInts(new int[3], Shape.of(3))))
                .hasMessageContaining("input %" + placeholder.id() + ": expected i32[4], found i32[3]");
    }

    @Test
    @Timeout(10)
    void executesAsynchronouslyOnTheGivenExecutor() throws Exception {
        ExecutorService pool = Executors.newSingleThreadExecutor(r -> new Thread(r, "graph-pool"));
        try {
            ReferenceExecutor async = new ReferenceExecutor(pool, ReferenceExecutor.Precision.AS_DECLARED);
            Graph g = new Graph();
            Tensor y = g.tensor(new float[] {1, 2, 3}, Shape.of(3)).exp().sumAll();
            // Hold the pool's only thread: the evaluation must queue behind it, not run on the caller.
            java.util.concurrent.CountDownLatch gate = new java.util.concurrent.CountDownLatch(1);
            pool.execute(() -> {
                try {
                    gate.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            var pending = g.evaluateAsync(async, y).toCompletableFuture();
            assertThat(pending).isNotDone();
            gate.countDown();
            Evaluation ev = pending.get(5, TimeUnit.SECONDS);
            assertThat(ev.scalar(y)).isCloseTo(Math.exp(1) + Math.exp(2) + Math.exp(3), within(1e-4));

            Tensor broken = g.tensor(new float[2], Shape.of(2, 1)).getRows(g.indices(new int[] {5}, Shape.of(1)));
            assertThatThrownBy(() -> g.evaluateAsync(async, broken).toCompletableFuture().join())
                    .isInstanceOf(CompletionException.class).hasCauseInstanceOf(IllegalArgumentException.class);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void opGraphsRunDirectlyWithoutTheGraphApi() {
        var b = new aether.runtime.ir.OpGraph.Builder();
        int x = b.add(new Op.Input("x", aether.runtime.ir.TensorType.of(DType.F32, 2)));
        int y = b.add(new Op.Scale(3), x);
        List<HostTensor> out = declared.executeNow(b.build(List.of(y)),
                java.util.Map.of(x, HostTensor.ofFloats(new float[] {1, -2}, Shape.of(2))));
        assertThat(out.get(0).toFloatArray()).containsExactly(3f, -6f);
    }
}
