package aether.scheduler.exec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Ops of the reference executor (f32 graphs, rounded per op) against plain float64 loops written here from the ops'
 * definitions, on fresh random inputs per seed. Tolerance: 2e-6 relative to the row scale, what float32 rounding of
 * each op's result allows.
 */
class OpNumericsTest {

    private static final double TOL = 2e-6;
    private final ReferenceExecutor executor = new ReferenceExecutor();

    private static float[] gaussian(Random rnd, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextGaussian() * scale);
        }
        return v;
    }

    private static void assertClose(float[] actual, double[] expected, double tol) {
        assertThat(actual).hasSize(expected.length);
        for (int i = 0; i < expected.length; i++) {
            assertThat((double) actual[i]).as("element %d", i)
                    .isCloseTo(expected[i], within(tol * Math.max(1, Math.abs(expected[i]))));
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void softmaxWithMaskScaleAndSoftCapMatchesFloat64(long seed) {
        Random rnd = new Random(seed);
        int b = 2, rows = 3, cols = 7;
        double scale = 0.37, cap = 2.5;
        float[] x = gaussian(rnd, b * rows * cols, 4);
        float[] mask = new float[rows * cols];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = rnd.nextInt(4) == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian();
        }
        mask[0] = 0;   // keep every row with at least one visible entry
        mask[cols] = 0;
        mask[2 * cols] = 0;
        Graph g = new Graph();
        Tensor out = g.tensor(x, Shape.of(b, rows, cols)).softmax(g.tensor(mask, Shape.of(rows, cols)), scale, cap);

        double[] expected = new double[x.length];
        for (int r = 0; r < b * rows; r++) {
            double[] z = new double[cols];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < cols; j++) {
                z[j] = cap * Math.tanh(x[r * cols + j] * scale / cap) + mask[(r % rows) * cols + j];
                max = Math.max(max, z[j]);
            }
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += Math.exp(z[j] - max);
            for (int j = 0; j < cols; j++) expected[r * cols + j] = Math.exp(z[j] - max) / sum;
        }
        float[] actual = out.toFloatArray(executor);
        assertClose(actual, expected, TOL);
        for (int i = 0; i < actual.length; i++) {
            if (mask[i % (rows * cols)] == Float.NEGATIVE_INFINITY) {
                assertThat(actual[i]).isZero();
            }
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void softmaxIsStableForHugeLogits(long seed) {
        Random rnd = new Random(seed);
        float[] x = gaussian(rnd, 8, 1);
        x[3] = 1e30f;
        x[5] = 1e30f;
        Graph g = new Graph();
        float[] y = g.tensor(x, Shape.of(8)).softmax(-1).toFloatArray(executor);
        for (int i = 0; i < 8; i++) {
            assertThat(y[i]).isEqualTo(i == 3 || i == 5 ? 0.5f : 0f);
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void rmsNormAndLayerNormMatchFloat64(long seed) {
        Random rnd = new Random(seed);
        int rows = 4, cols = 33;
        double eps = 1e-5;
        float[] x = gaussian(rnd, rows * cols, 3);
        for (int j = 0; j < cols; j++) x[j] += 10;   // a row with a large mean
        Graph g = new Graph();
        Tensor t = g.tensor(x, Shape.of(rows, cols));
        double[] rms = new double[x.length];
        double[] ln = new double[x.length];
        for (int r = 0; r < rows; r++) {
            double ss = 0, mean = 0, var = 0;
            for (int j = 0; j < cols; j++) {
                ss += (double) x[r * cols + j] * x[r * cols + j];
                mean += x[r * cols + j];
            }
            mean /= cols;
            for (int j = 0; j < cols; j++) var += Math.pow(x[r * cols + j] - mean, 2);
            var /= cols;
            for (int j = 0; j < cols; j++) {
                rms[r * cols + j] = x[r * cols + j] / Math.sqrt(ss / cols + eps);
                ln[r * cols + j] = (x[r * cols + j] - mean) / Math.sqrt(var + eps);
            }
        }
        assertClose(t.rmsNorm(eps).toFloatArray(executor), rms, TOL);
        assertClose(t.layerNorm(eps).toFloatArray(executor), ln, TOL);
    }

    /**
     * ggml_rope_ext (ext_factor 0, attn_factor 1) written out as ggml computes it: the angle of pair i is
     * pos * freqScale * freqBase^(-2i/nDims); NORMAL rotates (2i, 2i+1), NEOX rotates (i, i + nDims/2); dimensions past
     * nDims are copied.
     */
    private static double[] ropeReference(float[] x, int tokens, int heads, int dim, int[] pos, boolean neox, int nDims,
            double base, double freqScale, float[] factors) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) out[i] = x[i];
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < heads; h++) {
                int o = (t * heads + h) * dim;
                for (int i0 = 0; i0 < nDims; i0 += 2) {
                    double theta = pos[t] * freqScale * Math.pow(base, -(double) i0 / nDims)
                            / (factors == null ? 1 : factors[i0 / 2]);
                    int a = neox ? o + i0 / 2 : o + i0;
                    int b = neox ? a + nDims / 2 : a + 1;
                    out[a] = x[a] * Math.cos(theta) - x[b] * Math.sin(theta);
                    out[b] = x[a] * Math.sin(theta) + x[b] * Math.cos(theta);
                }
            }
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4})
    void ropeNormalAndNeoxMatchFloat64IncludingPartialRotaryDimsAndFreqScale(long seed) {
        Random rnd = new Random(seed);
        int tokens = 5, heads = 3, dim = 16;
        int nDims = seed % 2 == 0 ? 16 : 8;   // full and partial rotary
        double base = seed <= 2 ? 10000 : 1e6;
        double freqScale = seed % 2 == 0 ? 1 : 0.25;
        float[] x = gaussian(rnd, tokens * heads * dim, 1);
        int[] pos = new int[tokens];
        for (int t = 0; t < tokens; t++) pos[t] = rnd.nextInt(4096);
        for (Op.RopeMode mode : Op.RopeMode.values()) {
            Graph g = new Graph();
            Tensor y = g.tensor(x, Shape.of(tokens, heads, dim))
                    .rope(g.indices(pos, Shape.of(tokens)), mode, nDims, base, freqScale);
            double[] expected = ropeReference(x, tokens, heads, dim, pos, mode == Op.RopeMode.NEOX, nDims, base,
                    freqScale, null);
            assertClose(y.toFloatArray(executor), expected, 1e-5);
            float[] actual = y.toFloatArray(executor);
            for (int t = 0; t < tokens * heads; t++) {
                for (int i = nDims; i < dim; i++) {
                    assertThat(actual[t * dim + i]).as("pass-through dim %d", i).isEqualTo(x[t * dim + i]);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2})
    void ropeFrequencyFactorsDivideEachPairsAngle(long seed) {
        Random rnd = new Random(seed);
        int tokens = 3, heads = 2, dim = 12, nDims = 8;
        float[] x = gaussian(rnd, tokens * heads * dim, 1);
        float[] factors = new float[nDims / 2];
        for (int i = 0; i < factors.length; i++) factors[i] = 1 + 7 * rnd.nextFloat();
        int[] pos = {5, 77, 1000};
        for (Op.RopeMode mode : Op.RopeMode.values()) {
            Graph g = new Graph();
            Tensor y = g.tensor(x, Shape.of(tokens, heads, dim)).rope(g.indices(pos, Shape.of(tokens)),
                    g.tensor(factors, Shape.of(nDims / 2)), mode, nDims, 500000, 1);
            assertClose(y.toFloatArray(executor), ropeReference(x, tokens, heads, dim, pos,
                    mode == Op.RopeMode.NEOX, nDims, 500000, 1, factors), 1e-5);
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void ropeNormalAndNeoxDifferWhenRotationIsNotTrivial(long seed) {
        Random rnd = new Random(seed);
        float[] x = gaussian(rnd, 2 * 8, 1);
        Graph g = new Graph();
        Tensor t = g.tensor(x, Shape.of(2, 1, 8));
        Tensor pos = g.indices(new int[] {1, 2}, Shape.of(2));
        float[] normal = t.rope(pos, Op.RopeMode.NORMAL, 8, 10000, 1).toFloatArray(executor);
        float[] neox = t.rope(pos, Op.RopeMode.NEOX, 8, 10000, 1).toFloatArray(executor);
        assertThat(normal).isNotEqualTo(neox);
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 3, 6, -2})
    void causalAttentionWithGqaAndSlidingWindowMatchesFloat64(int param) {
        // A negative parameter runs window |param| with Gemma-style soft-capping of the scores.
        int window = Math.abs(param);
        double cap = param < 0 ? 1.5 : 0;
        Random rnd = new Random(100 + param);
        int batch = 2, hq = 6, hkv = 2, tq = 4, tk = 7, d = 5, dv = 3;
        double scale = param < 0 ? 1 : 1 / Math.sqrt(d);
        float[] q = gaussian(rnd, batch * hq * tq * d, 1);
        float[] k = gaussian(rnd, batch * hkv * tk * d, 1);
        float[] v = gaussian(rnd, batch * hkv * tk * dv, 1);
        Graph g = new Graph();
        Tensor out = g.tensor(q, Shape.of(batch, hq, tq, d)).attention(g.tensor(k, Shape.of(batch, hkv, tk, d)),
                g.tensor(v, Shape.of(batch, hkv, tk, dv)), scale, window, cap);
        assertThat(out.shape()).isEqualTo(Shape.of(batch, hq, tq, dv));

        double[] expected = new double[batch * hq * tq * dv];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < hq; h++) {
                int kh = h * hkv / hq;
                for (int i = 0; i < tq; i++) {
                    int pos = tk - tq + i;   // queries are the last tq positions
                    double[] s = new double[tk];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < tk; j++) {
                        boolean visible = j <= pos && (window == 0 || j > pos - window);
                        if (!visible) {
                            s[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        for (int c = 0; c < d; c++) {
                            s[j] += (double) q[((b * hq + h) * tq + i) * d + c] * k[((b * hkv + kh) * tk + j) * d + c];
                        }
                        s[j] *= scale;
                        if (cap > 0) s[j] = cap * Math.tanh(s[j] / cap);
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < tk; j++) sum += Math.exp(s[j] - max);
                    for (int c = 0; c < dv; c++) {
                        double acc = 0;
                        for (int j = 0; j < tk; j++) {
                            acc += Math.exp(s[j] - max) / sum * v[((b * hkv + kh) * tk + j) * dv + c];
                        }
                        expected[((b * hq + h) * tq + i) * dv + c] = acc;
                    }
                }
            }
        }
        assertClose(out.toFloatArray(executor), expected, TOL);

        // The same attention spelled out with graph ops (GQA by repeating kv heads) agrees.
        Tensor kRep = g.tensor(k, Shape.of(batch, hkv, 1, tk, d)).expand(batch, hkv, hq / hkv, tk, d)
                .reshape(batch, hq, tk, d);
        Tensor vRep = g.tensor(v, Shape.of(batch, hkv, 1, tk, dv)).expand(batch, hkv, hq / hkv, tk, dv)
                .reshape(batch, hq, tk, dv);
        Tensor spelled = g.tensor(q, Shape.of(batch, hq, tq, d)).matmulT(kRep)
                .softmax(g.causalMask(tq, tk, window, DType.F32), scale, cap).matmul(vRep);
        assertClose(spelled.toFloatArray(executor), expected, 1e-5);
    }
}
