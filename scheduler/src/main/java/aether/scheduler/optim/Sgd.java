package aether.scheduler.optim;

import aether.scheduler.graph.Tensor;
import java.util.List;

/**
 * Stochastic gradient descent with momentum, as torch.optim.SGD (dampening 0): {@code b = momentum * b + g} (b = g on
 * the first step), {@code p -= lr * (nesterov ? g + momentum * b : b)}, with L2 weight decay added to g first.
 */
public final class Sgd extends Optimizer {

    private final double lr;
    private final double momentum;
    private final double weightDecay;
    private final boolean nesterov;
    private final double[][] buffers;

    public Sgd(List<Tensor> params, double lr, double momentum) {
        this(params, lr, momentum, 0, false);
    }

    public Sgd(List<Tensor> params, double lr, double momentum, double weightDecay, boolean nesterov) {
        super(params);
        if (!(lr > 0) || !(momentum >= 0 && momentum < 1) || !(weightDecay >= 0)) {
            throw new IllegalArgumentException("sgd: lr=" + lr + ", momentum=" + momentum + ", weightDecay="
                    + weightDecay + " (expected: lr > 0, 0 <= momentum < 1, weightDecay >= 0)");
        }
        this.lr = lr;
        this.momentum = momentum;
        this.weightDecay = weightDecay;
        this.nesterov = nesterov;
        this.buffers = new double[params.size()][];
    }

    @Override
    protected void update(int index, double[] param, double[] grad, long step) {
        if (buffers[index] == null) {
            buffers[index] = new double[param.length];
        }
        double[] b = buffers[index];
        for (int i = 0; i < param.length; i++) {
            double g = grad[i] + weightDecay * param[i];
            b[i] = step == 1 ? g : momentum * b[i] + g;
            param[i] -= lr * (nesterov ? g + momentum * b[i] : b[i]);
        }
    }
}
