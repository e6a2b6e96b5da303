package aether.llm.gguf;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One metadata value with its exact GGUF type, so that a value read from a file is written back with the same bytes.
 * Integers of every width share {@link Int}; its {@code value} holds the bits zero-extended for unsigned types (a
 * {@code UINT64} above 2^63 is negative as a Java long).
 */
public sealed interface MetadataValue {

    GgufValueType type();

    /** Any of the eight integer types. */
    record Int(GgufValueType type, long value) implements MetadataValue {
        public Int {
            long min = switch (type) {
                case UINT8, UINT16, UINT32 -> 0;
                case INT8 -> Byte.MIN_VALUE;
                case INT16 -> Short.MIN_VALUE;
                case INT32 -> Integer.MIN_VALUE;
                case UINT64, INT64 -> Long.MIN_VALUE;
                default -> throw new IllegalArgumentException("not an integer type: " + type);
            };
            long max = switch (type) {
                case UINT8 -> 0xFF;
                case INT8 -> Byte.MAX_VALUE;
                case UINT16 -> 0xFFFF;
                case INT16 -> Short.MAX_VALUE;
                case UINT32 -> 0xFFFF_FFFFL;
                case INT32 -> Integer.MAX_VALUE;
                default -> Long.MAX_VALUE;
            };
            if (value < min || value > max) {
                throw new IllegalArgumentException("%s value %d is outside [%d, %d]".formatted(type, value, min, max));
            }
        }

        /** True if the value, read as the type says (unsigned or signed), fits a Java long. */
        public boolean fitsLong() {
            return type != GgufValueType.UINT64 || value >= 0;
        }

        @Override
        public String toString() {
            return type == GgufValueType.UINT64 ? Long.toUnsignedString(value) : Long.toString(value);
        }
    }

    record Float32(float value) implements MetadataValue {
        @Override
        public GgufValueType type() {
            return GgufValueType.FLOAT32;
        }

        @Override
        public String toString() {
            return Float.toString(value);
        }
    }

    record Float64(double value) implements MetadataValue {
        @Override
        public GgufValueType type() {
            return GgufValueType.FLOAT64;
        }

        @Override
        public String toString() {
            return Double.toString(value);
        }
    }

    record Bool(boolean value) implements MetadataValue {
        @Override
        public GgufValueType type() {
            return GgufValueType.BOOL;
        }

        @Override
        public String toString() {
            return Boolean.toString(value);
        }
    }

    /**
     * A string as the file stores it. Bytes are kept as they are, valid UTF-8 or not, so that they round-trip;
     * {@link #text()} decodes with U+FFFD for malformed sequences.
     */
    record Str(byte[] utf8) implements MetadataValue {
        public Str {
            utf8 = utf8.clone();
        }

        public static Str of(String text) {
            return new Str(text.getBytes(StandardCharsets.UTF_8));
        }

        public String text() {
            return new String(utf8, StandardCharsets.UTF_8);
        }

        @Override
        public byte[] utf8() {
            return utf8.clone();
        }

        int length() {
            return utf8.length;
        }

        byte[] bytesUnsafe() {
            return utf8;
        }

        @Override
        public GgufValueType type() {
            return GgufValueType.STRING;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Str s && Arrays.equals(utf8, s.utf8);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(utf8);
        }

        @Override
        public String toString() {
            return text();
        }
    }

    record Array(GgufArray array) implements MetadataValue {
        @Override
        public GgufValueType type() {
            return GgufValueType.ARRAY;
        }

        @Override
        public String toString() {
            return array.toString();
        }
    }

    static Int uint8(int value) {
        return new Int(GgufValueType.UINT8, value);
    }

    static Int int8(int value) {
        return new Int(GgufValueType.INT8, value);
    }

    static Int uint16(int value) {
        return new Int(GgufValueType.UINT16, value);
    }

    static Int int16(int value) {
        return new Int(GgufValueType.INT16, value);
    }

    static Int uint32(long value) {
        return new Int(GgufValueType.UINT32, value);
    }

    static Int int32(int value) {
        return new Int(GgufValueType.INT32, value);
    }

    /** A {@code UINT64}; {@code bits} is taken as unsigned. */
    static Int uint64(long bits) {
        return new Int(GgufValueType.UINT64, bits);
    }

    static Int int64(long value) {
        return new Int(GgufValueType.INT64, value);
    }

    static Str string(String text) {
        return Str.of(text);
    }
}
