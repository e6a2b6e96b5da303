package aether.scheduler.optim;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.scheduler.autograd.Gradients;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Evaluation;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Trains a 2-layer MLP (2 -> 16 tanh -> 2, softmax cross-entropy) on XOR of the quadrants: class 1 when x0 * x1 > 0.
 * Not linearly separable, so the hidden layer must learn. Fixed seed; the thresholds are stated in each test: the mean
 * cross-entropy must fall below {@value #LOSS_THRESHOLD} (from about ln 2 = 0.69 at the start) and a fresh test set
 * must be classified at least {@value #MIN_TEST_ACCURACY} correctly.
 */
class MlpTrainingTest {

    static final double LOSS_THRESHOLD = 0.1;
    static final double MIN_TEST_ACCURACY = 0.9;
    private static final int N = 128;
    private static final int HIDDEN = 16;

    private final ReferenceExecutor executor = new ReferenceExecutor();

    private record Data(float[] x, float[] onehot, int[] labels) {}

    private static Data data(Random rnd, int n) {
        float[] x = new float[n * 2];
        float[] onehot = new float[n * 2];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            // Keep points off the axes so the classes have a margin.
            double a = (0.15 + rnd.nextDouble()) * (rnd.nextBoolean() ? 1 : -1);
            double b = (0.15 + rnd.nextDouble()) * (rnd.nextBoolean() ? 1 : -1);
            x[2 * i] = (float) a;
            x[2 * i + 1] = (float) b;
            labels[i] = a * b > 0 ? 1 : 0;
            onehot[2 * i + labels[i]] = 1;
        }
        return new Data(x, onehot, labels);
    }

    private static float[] init(Random rnd, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextGaussian() * scale);
        }
        return v;
    }

    private record Model(Graph g, Tensor x, Tensor logits, Tensor loss, List<Tensor> params) {}

    private static Model model(Random rnd, Data train) {
        Graph g = new Graph();
        Tensor x = g.tensor(train.x(), Shape.of(N, 2));
        Tensor y = g.tensor(train.onehot(), Shape.of(N, 2));
        Tensor w1 = g.tensor(init(rnd, HIDDEN * 2, 1), Shape.of(HIDDEN, 2));
        Tensor b1 = g.tensor(new float[HIDDEN], Shape.of(HIDDEN));
        Tensor w2 = g.tensor(init(rnd, 2 * HIDDEN, 1 / Math.sqrt(HIDDEN)), Shape.of(2, HIDDEN));
        Tensor b2 = g.tensor(new float[2], Shape.of(2));
        Tensor logits = x.linear(w1, b1).tanh().linear(w2, b2);
        Tensor loss = logits.softmax(-1).log().mul(y).sum(-1).neg().meanAll();
        return new Model(g, x, logits, loss, List.of(w1, b1, w2, b2));
    }

    private double train(Function<List<Tensor>, Optimizer> optimizer, int steps) {
        Random rnd = new Random(2024);
        Data train = data(rnd, N);
        Model m = model(rnd, train);
        Gradients grads = m.loss().backward();
        Optimizer opt = optimizer.apply(m.params());
        double first = Double.NaN;
        double last = Double.NaN;
        for (int step = 0; step < steps; step++) {
            Evaluation ev = opt.step(executor, grads, m.loss());
            last = ev.scalar(m.loss());
            if (step == 0) {
                first = last;
            }
        }
        last = m.g().evaluate(executor, m.loss()).scalar(m.loss());
        assertThat(first).as("initial loss").isGreaterThan(0.5);
        assertThat(last).as("final loss after %d steps (threshold %s)", steps, LOSS_THRESHOLD)
                .isLessThan(LOSS_THRESHOLD);

        Data test = data(new Random(7), N);
        m.g().set(m.x(), HostTensor.ofFloats(test.x(), Shape.of(N, 2)));
        int[] predicted = m.logits().argmax(-1).toIntArray(executor);
        int correct = 0;
        for (int i = 0; i < N; i++) {
            correct += predicted[i] == test.labels()[i] ? 1 : 0;
        }
        assertThat(correct / (double) N).as("test accuracy").isGreaterThanOrEqualTo(MIN_TEST_ACCURACY);
        return last;
    }

    @Test
    @Timeout(120)
    void sgdWithMomentumShouldTrainTheMlpBelowTheLossThreshold() {
        train(params -> new Sgd(params, 0.2, 0.9), 600);
    }

    @Test
    @Timeout(120)
    void adamWShouldTrainTheMlpBelowTheLossThreshold() {
        train(params -> new AdamW(params, 0.03, 0.9, 0.999, 1e-8, 1e-4), 400);
    }

    @Test
    void sgdStepShouldFollowTheMomentumRuleExactly() {
        // One parameter p, loss = sum(p * c): the gradient is c, constant, so the update sequence is known in closed
        // form: b1 = c, b2 = m c + c; p2 = p0 - lr c - lr (1 + m) c.
        Graph g = new Graph();
        Tensor p = g.tensor(new double[] {1, -2}, Shape.of(2), DType.F64);
        Tensor c = g.tensor(new double[] {0.5, 3}, Shape.of(2), DType.F64);
        Gradients grads = p.mul(c).sumAll().backward();
        Sgd sgd = new Sgd(List.of(p), 0.1, 0.9);
        sgd.step(executor, grads);
        sgd.step(executor, grads);
        double[] v = ((HostTensor) g.value(p)).toDoubleArray();
        assertThat(v[0]).isCloseTo(1 - 0.1 * 0.5 - 0.1 * 1.9 * 0.5, org.assertj.core.api.Assertions.within(1e-12));
        assertThat(v[1]).isCloseTo(-2 - 0.1 * 3 - 0.1 * 1.9 * 3, org.assertj.core.api.Assertions.within(1e-12));
    }

    @Test
    void adamWFirstStepShouldMoveEachWeightByAboutLrAgainstItsGradientAfterDecay() {
        // With bias correction the first Adam step is lr * g / (|g| + eps) = lr * sign(g).
        Graph g = new Graph();
        Tensor p = g.tensor(new double[] {1, -2}, Shape.of(2), DType.F64);
        Tensor c = g.tensor(new double[] {0.5, -3}, Shape.of(2), DType.F64);
        Gradients grads = p.mul(c).sumAll().backward();
        new AdamW(List.of(p), 0.01, 0.9, 0.999, 1e-8, 0.1).step(executor, grads);
        double[] v = ((HostTensor) g.value(p)).toDoubleArray();
        assertThat(v[0]).isCloseTo(1 * (1 - 0.001) - 0.01, org.assertj.core.api.Assertions.within(1e-9));
        assertThat(v[1]).isCloseTo(-2 * (1 - 0.001) + 0.01, org.assertj.core.api.Assertions.within(1e-9));
    }
}
