package aether.scheduler.optim;

import aether.scheduler.graph.Tensor;
import java.util.List;

/**
 * Adam with decoupled weight decay (Loshchilov and Hutter), as torch.optim.AdamW: {@code p *= 1 - lr * wd}, then
 * {@code m = b1 m + (1 - b1) g}, {@code v = b2 v + (1 - b2) g^2}, {@code p -= lr * m^ / (sqrt(v^) + eps)} with
 * bias-corrected moments {@code m^ = m / (1 - b1^t)}, {@code v^ = v / (1 - b2^t)}.
 */
public final class AdamW extends Optimizer {

    private final double lr;
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final double[][] m;
    private final double[][] v;

    /** torch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01. */
    public AdamW(List<Tensor> params, double lr) {
        this(params, lr, 0.9, 0.999, 1e-8, 0.01);
    }

    public AdamW(List<Tensor> params, double lr, double beta1, double beta2, double eps, double weightDecay) {
        super(params);
        if (!(lr > 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0)
                || !(weightDecay >= 0)) {
            throw new IllegalArgumentException("adamw: lr=" + lr + ", betas=(" + beta1 + ", " + beta2 + "), eps="
                    + eps + ", weightDecay=" + weightDecay
                    + " (expected: lr > 0, 0 <= beta < 1, eps > 0, weightDecay >= 0)");
        }
        this.lr = lr;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.m = new double[params.size()][];
        this.v = new double[params.size()][];
    }

    @Override
    protected void update(int index, double[] param, double[] grad, long step) {
        if (m[index] == null) {
            m[index] = new double[param.length];
            v[index] = new double[param.length];
        }
        double[] mi = m[index];
        double[] vi = v[index];
        double c1 = 1 - Math.pow(beta1, step);
        double c2 = 1 - Math.pow(beta2, step);
        for (int i = 0; i < param.length; i++) {
            double g = grad[i];
            param[i] *= 1 - lr * weightDecay;
            mi[i] = beta1 * mi[i] + (1 - beta1) * g;
            vi[i] = beta2 * vi[i] + (1 - beta2) * g * g;
            param[i] -= lr * (mi[i] / c1) / (Math.sqrt(vi[i] / c2) + eps);
        }
    }
}
