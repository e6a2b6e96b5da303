package aether.llm.gguf;

import java.util.Optional;

/** The metadata value types of GGUF ({@code gguf_type}), with their on-disk ids and fixed sizes. */
public enum GgufValueType {
    UINT8(0, 1),
    INT8(1, 1),
    UINT16(2, 2),
    INT16(3, 2),
    UINT32(4, 4),
    INT32(5, 4),
    FLOAT32(6, 4),
    BOOL(7, 1),
    /** uint64 byte length, then UTF-8 bytes (no terminator). */
    STRING(8, -1),
    /** uint32 element type, uint64 count, then the elements. */
    ARRAY(9, -1),
    UINT64(10, 8),
    INT64(11, 8),
    FLOAT64(12, 8);

    private static final GgufValueType[] BY_ID = values();

    private final int id;
    private final int sizeBytes;

    GgufValueType(int id, int sizeBytes) {
        this.id = id;
        this.sizeBytes = sizeBytes;
    }

    /** The id stored in the file. */
    public int id() {
        return id;
    }

    /** Bytes of one value, or -1 for the variable-length {@link #STRING} and {@link #ARRAY}. */
    public int sizeBytes() {
        return sizeBytes;
    }

    /** The fewest bytes one value can take: a string is at least its length field, an array its type and count. */
    int minSizeBytes() {
        return switch (this) {
            case STRING -> 8;
            case ARRAY -> 4 + 8;
            default -> sizeBytes;
        };
    }

    public boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
            default -> false;
        };
    }

    public boolean isUnsigned() {
        return this == UINT8 || this == UINT16 || this == UINT32 || this == UINT64;
    }

    public boolean isFloat() {
        return this == FLOAT32 || this == FLOAT64;
    }

    /** The type with this on-disk id (ids are dense, 0..12). */
    public static Optional<GgufValueType> byId(long id) {
        return id >= 0 && id < BY_ID.length ? Optional.of(BY_ID[(int) id]) : Optional.empty();
    }
}
