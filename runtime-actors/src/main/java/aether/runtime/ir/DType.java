package aether.runtime.ir;

import aether.runtime.tensor.GgmlType;

/**
 * Element type of a graph value. Floating types ({@link #F32}, {@link #F16}, {@link #BF16}, {@link #F64}) carry
 * activations and gradients; {@link #I32} carries indices (token ids, positions, argmax results); any ggml block type
 * ({@link #quantized}) marks a weight used in its block format, only as a constant operand of matmul or get_rows.
 *
 * @param ggml the storage type; one of the scalar float or integer types above, or a block type
 */
public record DType(GgmlType ggml) {

    public static final DType F32 = new DType(GgmlType.F32);
    public static final DType F16 = new DType(GgmlType.F16);
    public static final DType BF16 = new DType(GgmlType.BF16);
    public static final DType F64 = new DType(GgmlType.F64);
    public static final DType I32 = new DType(GgmlType.I32);

    public DType {
        if (ggml == null) {
            throw new IllegalArgumentException("dtype: ggml type is null");
        }
        if (ggml == GgmlType.I8 || ggml == GgmlType.I16 || ggml == GgmlType.I64) {
            throw new IllegalArgumentException("dtype " + ggml + " is not supported in graphs (expected: F32, F16,"
                    + " BF16, F64, I32 or a ggml block type)");
        }
    }

    /** A weight stored in ggml block type {@code type} (Q4_0, Q8_0, Q4_K, ...). */
    public static DType quantized(GgmlType type) {
        if (type.blockSize() == 1) {
            throw new IllegalArgumentException("dtype: " + type + " is not a block type");
        }
        return new DType(type);
    }

    public boolean isFloat() {
        return this.equals(F32) || this.equals(F16) || this.equals(BF16) || this.equals(F64);
    }

    public boolean isInteger() {
        return this.equals(I32);
    }

    public boolean isQuantized() {
        return ggml.blockSize() > 1;
    }

    @Override
    public String toString() {
        return ggml.name().toLowerCase(java.util.Locale.ROOT);
    }
}
