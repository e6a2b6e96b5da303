package aether.scheduler.autograd;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Evaluation;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Central-difference gradient check in float64. The checked function's output is contracted with fixed random weights
 * (y = sum(f(x) * r)) so every output element's gradient matters, not only their sum.
 */
final class GradCheck {

    /** Builds f from the differentiable leaves; extra constants (ids, positions) are made on the graph. */
    interface Function {
        Tensor build(Graph g, List<Tensor> leaves);
    }

    /** How to draw leaf values. */
    enum Values { GAUSSIAN, POSITIVE, AWAY_FROM_ZERO }

    static final double STEP = 1e-6;
    static final double ABS_TOL = 1e-7;
    static final double REL_TOL = 1e-6;

    /** Names of the ops that appeared in checked functions (see GradCheckTest's coverage check). */
    static final java.util.Set<String> COVERED = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private GradCheck() {}

    static double[] draw(Random rnd, int n, Values kind) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = switch (kind) {
                case GAUSSIAN -> rnd.nextGaussian();
                case POSITIVE -> 0.3 + 1.7 * rnd.nextDouble();
                case AWAY_FROM_ZERO -> (0.1 + rnd.nextDouble()) * (rnd.nextBoolean() ? 1 : -1);
            };
        }
        return v;
    }

    /** Checks d(sum(f * r))/d leaf against central differences for every element of every leaf. */
    static void check(String name, List<Shape> shapes, Values kind, long seed, Function f) {
        Random rnd = new Random(seed);
        Graph g = new Graph();
        List<Tensor> leaves = new ArrayList<>();
        List<double[]> values = new ArrayList<>();
        for (Shape s : shapes) {
            double[] v = draw(rnd, s.sizeAsInt(), kind);
            values.add(v);
            leaves.add(g.tensor(v, s, DType.F64));
        }
        int first = g.size();
        Tensor out = f.build(g, leaves);
        for (int id = first; id <= out.id(); id++) {
            COVERED.add(g.node(id).op().name());
        }
        assertThat(out.dtype()).as(name + ": checked in float64").isEqualTo(DType.F64);
        Tensor r = g.tensor(draw(rnd, out.shape().sizeAsInt(), Values.GAUSSIAN), out.shape(), DType.F64);
        Tensor y = out.mul(r).sumAll();
        Gradients grads = y.backward();
        Tensor[] gradTensors = new Tensor[leaves.size()];
        for (int i = 0; i < leaves.size(); i++) {
            gradTensors[i] = grads.of(leaves.get(i));
            assertThat(gradTensors[i].shape()).as(name + ": gradient shape of leaf " + i)
                    .isEqualTo(leaves.get(i).shape());
        }
        ReferenceExecutor ex = new ReferenceExecutor(ReferenceExecutor.Precision.FLOAT64);
        Evaluation ev = g.evaluate(ex, gradTensors);
        for (int i = 0; i < leaves.size(); i++) {
            double[] analytic = ev.doubles(gradTensors[i]);
            double[] v = values.get(i).clone();
            for (int j = 0; j < v.length; j++) {
                double saved = v[j];
                v[j] = saved + STEP;
                g.set(leaves.get(i), HostTensor.ofDoubles(v, shapes.get(i)));
                double plus = g.evaluate(ex, y).scalar(y);
                v[j] = saved - STEP;
                g.set(leaves.get(i), HostTensor.ofDoubles(v, shapes.get(i)));
                double minus = g.evaluate(ex, y).scalar(y);
                v[j] = saved;
                double numeric = (plus - minus) / (2 * STEP);
                assertThat(analytic[j])
                        .as("%s: d/d leaf %d [%d] analytic vs central difference", name, i, j)
                        .isCloseTo(numeric, org.assertj.core.api.Assertions.within(ABS_TOL + REL_TOL
                                * Math.abs(numeric)));
            }
            g.set(leaves.get(i), HostTensor.ofDoubles(v, shapes.get(i)));
        }
    }
}
