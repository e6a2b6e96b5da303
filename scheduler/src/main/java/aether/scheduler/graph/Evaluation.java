package aether.scheduler.graph;

import aether.scheduler.exec.HostTensor;
import java.util.Map;

/** Values computed by one {@link Graph#evaluate} call, by tensor. Each node was computed once for all of them. */
public final class Evaluation {

    private final Map<Integer, HostTensor> values;

    Evaluation(Map<Integer, HostTensor> values) {
        this.values = Map.copyOf(values);
    }

    /** The value of {@code t}, which must be one of the tensors passed to evaluate. */
    public HostTensor value(Tensor t) {
        HostTensor v = values.get(t.id());
        if (v == null) {
            throw new IllegalArgumentException("tensor %" + t.id() + " was not evaluated (evaluated: "
                    + values.keySet() + ")");
        }
        return v;
    }

    public float[] floats(Tensor t) {
        return value(t).toFloatArray();
    }

    public double[] doubles(Tensor t) {
        return value(t).toDoubleArray();
    }

    /** The single element of a scalar (or one-element) tensor. */
    public double scalar(Tensor t) {
        HostTensor v = value(t);
        if (v.size() != 1) {
            throw new IllegalArgumentException("tensor %" + t.id() + " " + v.type() + " is not a scalar");
        }
        return v.get(0);
    }
}
