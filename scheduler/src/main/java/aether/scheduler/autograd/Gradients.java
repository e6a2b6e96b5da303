package aether.scheduler.autograd;

import aether.runtime.ir.DType;
import aether.scheduler.graph.Tensor;
import java.util.Map;

/** Gradients of one scalar with respect to the tensors it depends on; each is a node of the same graph. */
public final class Gradients {

    private final Tensor output;
    private final Map<Integer, Tensor> byId;

    Gradients(Tensor output, Map<Integer, Tensor> byId) {
        this.output = output;
        this.byId = Map.copyOf(byId);
    }

    public Tensor output() {
        return output;
    }

    /**
     * d output / d x, shaped like x. Zeros when the output does not depend on x.
     *
     * @throws IllegalArgumentException when x is not differentiable (integer or quantized) or from another graph
     */
    public Tensor of(Tensor x) {
        if (x.graph() != output.graph()) {
            throw new IllegalArgumentException("gradient of %" + x.id() + ": tensor belongs to another graph");
        }
        DType t = x.dtype();
        if (!t.isFloat()) {
            throw new IllegalArgumentException("gradient of %" + x.id() + " " + x.node().type()
                    + ": only floating tensors are differentiable (indices and quantized weights are constants)");
        }
        Tensor g = byId.get(x.id());
        return g != null ? g : x.graph().full(0, x.shape(), t);
    }

    /** True when the output depends differentiably on x. */
    public boolean has(Tensor x) {
        return x.graph() == output.graph() && byId.containsKey(x.id());
    }
}
