package aether.scheduler.exec;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;

/** A weight [rows, cols] bound to a graph input, read through {@link WeightRows}. */
public record WeightTensor(TensorType type, WeightRows rows) implements TensorValue {

    public WeightTensor {
        Shape expected = Shape.of(rows.rows(), rows.cols());
        if (!type.shape().equals(expected) || !type.dtype().ggml().equals(rows.type())) {
            throw new IllegalArgumentException("weight tensor: declared " + type + " but rows are "
                    + rows.type().name().toLowerCase(java.util.Locale.ROOT) + expected);
        }
    }

    public static WeightTensor of(WeightRows rows) {
        return new WeightTensor(new TensorType(Shape.of(rows.rows(), rows.cols()), new DType(rows.type())), rows);
    }
}
