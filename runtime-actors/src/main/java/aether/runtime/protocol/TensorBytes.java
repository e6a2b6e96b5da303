package aether.runtime.protocol;

import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;

/** Sizes of tensors in their storage format (ggml's, little-endian, the last dimension contiguous). */
public final class TensorBytes {
    private TensorBytes() {}

    /**
     * Bytes a tensor of {@code type} occupies.
     *
     * @throws IllegalArgumentException if a block type's rows are not whole blocks
     */
    public static long byteSize(TensorType type) {
        Shape shape = type.shape();
        long[] ne = new long[shape.rank()];
        for (int i = 0; i < ne.length; i++) {
            ne[i] = shape.dim(shape.rank() - 1 - i);   // ggml order: the contiguous dimension first
        }
        try {
            return type.dtype().ggml().bytesFor(ne);
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw new IllegalArgumentException("tensor " + type + ": " + e.getMessage(), e);
        }
    }
}
