package aether.scheduler.optim;

import aether.runtime.ir.Op;
import aether.scheduler.autograd.Gradients;
import aether.scheduler.exec.GraphExecutor;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.graph.Evaluation;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Updates parameter leaves in place (through {@link Graph#set}) from their gradients. One {@link #step} evaluates the
 * gradients (and any extra tensors, typically the loss) in a single evaluation, then applies the update rule to each
 * parameter. Parameters keep a float64 master copy here; the graph sees it rounded to each parameter's dtype.
 * Not thread-safe.
 */
public abstract class Optimizer {

    private final List<Tensor> params;
    private final double[][] values;
    private long steps;

    protected Optimizer(List<Tensor> params) {
        if (params.isEmpty()) {
            throw new IllegalArgumentException("optimizer: no parameters");
        }
        this.params = List.copyOf(params);
        this.values = new double[params.size()][];
        for (int i = 0; i < this.params.size(); i++) {
            Tensor p = this.params.get(i);
            if (!(p.node().op() instanceof Op.Input) || !p.dtype().isFloat()) {
                throw new IllegalArgumentException("optimizer: parameter " + p + " is not a floating input leaf");
            }
            TensorValue v = p.graph().value(p);
            if (!(v instanceof HostTensor h)) {
                throw new IllegalArgumentException("optimizer: parameter " + p + " has no host value bound");
            }
            values[i] = h.toDoubleArray();
        }
    }

    public List<Tensor> params() {
        return params;
    }

    /** Steps taken so far. */
    public long steps() {
        return steps;
    }

    /**
     * Evaluates the gradients of every parameter plus {@code extra}, updates the parameters and returns the evaluation
     * (values from before the update).
     */
    public Evaluation step(GraphExecutor executor, Gradients grads, Tensor... extra) {
        Tensor[] outs = new Tensor[params.size() + extra.length];
        List<Tensor> gradTensors = new ArrayList<>(params.size());
        for (int i = 0; i < params.size(); i++) {
            gradTensors.add(grads.of(params.get(i)));
            outs[i] = gradTensors.get(i);
        }
        System.arraycopy(extra, 0, outs, params.size(), extra.length);
        Graph graph = params.get(0).graph();
        Evaluation ev = graph.evaluate(executor, outs);
        steps++;
        for (int i = 0; i < params.size(); i++) {
            Tensor p = params.get(i);
            update(i, values[i], ev.value(gradTensors.get(i)).toDoubleArray(), steps);
            graph.set(p, HostTensor.of(values[i], p.shape(), p.dtype()));
        }
        return ev;
    }

    /**
     * Applies the rule to parameter {@code index}: {@code param} is updated in place from {@code grad}.
     *
     * @param step 1 on the first step
     */
    protected abstract void update(int index, double[] param, double[] grad, long step);
}
