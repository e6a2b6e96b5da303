package aether.runtime.ir;

/** Shape and element type of a graph value. */
public record TensorType(Shape shape, DType dtype) {

    public TensorType {
        if (shape == null || dtype == null) {
            throw new IllegalArgumentException("tensor type: shape and dtype are required (found " + shape + ", "
                    + dtype + ")");
        }
    }

    public static TensorType of(DType dtype, int... dims) {
        return new TensorType(Shape.of(dims), dtype);
    }

    @Override
    public String toString() {
        return dtype + shape.toString();
    }
}
