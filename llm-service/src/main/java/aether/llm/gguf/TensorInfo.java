package aether.llm.gguf;

import aether.runtime.tensor.GgmlType;
import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor's entry in a GGUF header, already validated against the file.
 *
 * @param name      unique within the file
 * @param type      element type
 * @param shape     ggml order: {@code shape[0]} is the row length (contiguous); at most 4 dimensions
 * @param offset    where the data starts, in bytes from the start of the data section (a multiple of the alignment)
 * @param sizeBytes bytes of data, {@code type.bytesFor(shape)}
 */
public record TensorInfo(String name, GgmlType type, long[] shape, long offset, long sizeBytes) {

    public TensorInfo {
        Objects.requireNonNull(name);
        Objects.requireNonNull(type);
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Size of dimension {@code i} (ggml order), 1 beyond the rank. */
    public long dim(int i) {
        return i < shape.length ? shape[i] : 1;
    }

    /** Product of the dimensions (validated not to overflow when the file was opened). */
    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t
                && t.name.equals(name)
                && t.type == type
                && Arrays.equals(t.shape, shape)
                && t.offset == offset
                && t.sizeBytes == sizeBytes;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, type, Arrays.hashCode(shape), offset, sizeBytes);
    }

    @Override
    public String toString() {
        return "%s %s %s @%d (%,d bytes)".formatted(name, type, Arrays.toString(shape), offset, sizeBytes);
    }
}
