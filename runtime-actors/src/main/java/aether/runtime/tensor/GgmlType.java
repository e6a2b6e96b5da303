package aether.runtime.tensor;

import java.util.Arrays;
import java.util.Optional;

/**
 * Every tensor type ggml defines, with its on-disk id (GGUF {@code ggml_type}), the number of elements per block and
 * the bytes per block. The layout contract is ggml's {@code ggml-common.h}; ids that ggml retired (4, 5, 31-33,
 * 36-38) are absent on purpose: a file that uses one is rejected as an unknown type.
 *
 * <p>Row-size arithmetic is overflow-checked: shapes come from untrusted files.
 */
public enum GgmlType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 2 + 16),
    Q4_1(3, 32, 2 + 2 + 16),
    Q5_0(6, 32, 2 + 4 + 16),
    Q5_1(7, 32, 2 + 2 + 4 + 16),
    Q8_0(8, 32, 2 + 32),
    Q8_1(9, 32, 2 + 2 + 32),
    Q2_K(10, 256, 16 + 64 + 2 + 2),
    Q3_K(11, 256, 32 + 64 + 12 + 2),
    Q4_K(12, 256, 2 + 2 + 12 + 128),
    Q5_K(13, 256, 2 + 2 + 12 + 32 + 128),
    Q6_K(14, 256, 128 + 64 + 16 + 2),
    Q8_K(15, 256, 4 + 256 + 16 * 2),
    IQ2_XXS(16, 256, 2 + 64),
    IQ2_XS(17, 256, 2 + 64 + 8),
    IQ3_XXS(18, 256, 2 + 96),
    IQ1_S(19, 256, 2 + 32 + 16),
    IQ4_NL(20, 32, 2 + 16),
    IQ3_S(21, 256, 2 + 64 + 8 + 32 + 4),
    IQ2_S(22, 256, 2 + 64 + 8 + 8),
    IQ4_XS(23, 256, 2 + 2 + 4 + 128),
    I8(24, 1, 1),
    I16(25, 1, 2),
    I32(26, 1, 4),
    I64(27, 1, 8),
    F64(28, 1, 8),
    IQ1_M(29, 256, 32 + 16 + 8),
    BF16(30, 1, 2),
    TQ1_0(34, 256, 48 + 4 + 2),
    TQ2_0(35, 256, 64 + 2),
    MXFP4(39, 32, 1 + 16);

    private static final GgmlType[] BY_ID = new GgmlType[40];

    static {
        for (GgmlType t : values()) {
            BY_ID[t.id] = t;
        }
    }

    private final int id;
    private final int blockSize;
    private final int blockBytes;

    GgmlType(int id, int blockSize, int blockBytes) {
        this.id = id;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    /** The {@code ggml_type} value stored in GGUF tensor infos. */
    public int id() {
        return id;
    }

    /** Elements per block (1 for plain scalar types). */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block. */
    public int blockBytes() {
        return blockBytes;
    }

    /** True for the block formats (everything with more than one element per block). */
    public boolean isQuantized() {
        return blockSize > 1;
    }

    /** True for the floating-point scalar types a kernel can read element by element. */
    public boolean isFloat() {
        return this == F32 || this == F16 || this == BF16 || this == F64;
    }

    /** The type with this GGUF id, if ggml defines one. */
    public static Optional<GgmlType> byId(long id) {
        return id >= 0 && id < BY_ID.length ? Optional.ofNullable(BY_ID[(int) id]) : Optional.empty();
    }

    /** The type with this name, case-insensitively ({@code q4_0}, {@code Q4_K}, {@code bf16}). */
    public static Optional<GgmlType> byName(String name) {
        return Arrays.stream(values()).filter(t -> t.name().equalsIgnoreCase(name)).findFirst();
    }

    /**
     * Bytes that {@code elements} elements occupy.
     *
     * @throws IllegalArgumentException if {@code elements} is negative or not a multiple of {@link #blockSize()}
     * @throws ArithmeticException      if the byte count overflows a long
     */
    public long bytesFor(long elements) {
        if (elements < 0) {
            throw new IllegalArgumentException("%s: element count %d is negative".formatted(this, elements));
        }
        if (elements % blockSize != 0) {
            throw new IllegalArgumentException(
                    "%s: %,d elements is not a multiple of the block size %d".formatted(this, elements, blockSize));
        }
        return Math.multiplyExact(elements / blockSize, (long) blockBytes);
    }

    /**
     * Bytes of a tensor of shape {@code ne} (ggml order: {@code ne[0]} is the row length). Rows must be whole blocks.
     *
     * @throws IllegalArgumentException if a dimension is negative or a row is not a whole number of blocks
     * @throws ArithmeticException      if the element or byte count overflows a long
     */
    public long bytesFor(long[] ne) {
        if (ne.length == 0) {
            return bytesFor(1);
        }
        for (long d : ne) {
            if (d < 0) {
                throw new IllegalArgumentException("%s: dimension %d is negative in %s".formatted(this, d, Arrays.toString(ne)));
            }
        }
        if (ne[0] % blockSize != 0) {
            throw new IllegalArgumentException("%s: row length ne[0]=%,d is not a multiple of the block size %d"
                    .formatted(this, ne[0], blockSize));
        }
        long rows = 1;
        for (int i = 1; i < ne.length; i++) {
            rows = Math.multiplyExact(rows, ne[i]);
        }
        return Math.multiplyExact(bytesFor(ne[0]), rows);
    }
}
