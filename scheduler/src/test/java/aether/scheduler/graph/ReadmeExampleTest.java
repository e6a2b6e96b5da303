package aether.scheduler.graph;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import aether.runtime.ir.Shape;
import aether.scheduler.autograd.Gradients;
import aether.scheduler.exec.GraphExecutor;
import aether.scheduler.exec.ReferenceExecutor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The snippet from the project's issue, run as written, with its gradient checked against float64 by hand. */
class ReadmeExampleTest {

    private final GraphExecutor executor = new ReferenceExecutor();

    @Test
    void shouldRunTheIssueSnippetWhoseGradientIsZeroBecauseSoftmaxRowsSumToOne() {
        float[] data = {0.5f, -1.25f, 2f, 0.75f};
        float[] wData = {1.5f, -0.5f, 0.25f, 2f};
        Graph g = new Graph();
        Tensor x = g.tensor(data, Shape.of(2, 2));
        Tensor w = g.tensor(wData, Shape.of(2, 2));
        Tensor y = x.matmul(w).softmax(-1).sumAll();
        Gradients grads = y.backward();
        float[] dx = grads.of(x).toFloatArray(executor);

        // Each softmax row sums to 1, so y = 2 whatever x is, and dy/dx = 0 (up to float32 rounding).
        assertThat(y.toFloatArray(executor)).containsExactly(2f);
        assertThat(dx).hasSize(4);
        for (float v : dx) {
            assertThat((double) v).isCloseTo(0, within(1e-6));
        }
    }

    @Test
    void shouldMatchAHandDerivedGradientWhenTheSoftmaxIsWeighted() {
        Random rnd = new Random(42);
        float[] xv = new float[6];
        float[] wv = new float[12];
        float[] cv = new float[8];
        for (int i = 0; i < xv.length; i++) xv[i] = (float) rnd.nextGaussian();
        for (int i = 0; i < wv.length; i++) wv[i] = (float) rnd.nextGaussian();
        for (int i = 0; i < cv.length; i++) cv[i] = (float) rnd.nextGaussian();
        Graph g = new Graph();
        Tensor x = g.tensor(xv, Shape.of(2, 3));
        Tensor w = g.tensor(wv, Shape.of(3, 4));
        Tensor c = g.tensor(cv, Shape.of(2, 4));
        Tensor y = x.matmul(w).softmax(-1).mul(c).sumAll();
        float[] dx = y.backward().of(x).toFloatArray(executor);

        // By hand, in float64: z = x w, p = softmax(z), y = sum(p * c);
        // dy/dz[i,j] = p[i,j] (c[i,j] - sum_l p[i,l] c[i,l]);  dy/dx[i,k] = sum_j dy/dz[i,j] w[k,j].
        double[] expected = new double[6];
        for (int i = 0; i < 2; i++) {
            double[] z = new double[4];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < 4; j++) {
                for (int k = 0; k < 3; k++) z[j] += (double) xv[i * 3 + k] * wv[k * 4 + j];
                max = Math.max(max, z[j]);
            }
            double sum = 0;
            for (int j = 0; j < 4; j++) sum += z[j] = Math.exp(z[j] - max);
            double pc = 0;
            for (int j = 0; j < 4; j++) pc += (z[j] /= sum) * cv[i * 4 + j];
            for (int k = 0; k < 3; k++) {
                for (int j = 0; j < 4; j++) expected[i * 3 + k] += z[j] * (cv[i * 4 + j] - pc) * wv[k * 4 + j];
            }
        }
        for (int i = 0; i < 6; i++) {
            assertThat((double) dx[i]).isCloseTo(expected[i], within(1e-5 + 1e-5 * Math.abs(expected[i])));
        }
    }
}
