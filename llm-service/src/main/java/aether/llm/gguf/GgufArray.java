package aether.llm.gguf;

import static aether.llm.gguf.LittleEndian.F32;
import static aether.llm.gguf.LittleEndian.F64;
import static aether.llm.gguf.LittleEndian.I16;
import static aether.llm.gguf.LittleEndian.I32;
import static aether.llm.gguf.LittleEndian.I64;
import static aether.llm.gguf.LittleEndian.U8;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.AbstractList;
import java.util.List;
import java.util.Objects;
import java.util.RandomAccess;

/**
 * A metadata array: a view over its encoded elements, decoded one element at a time on access, so a 150k-token
 * vocabulary costs one {@code long} per string (its offset) rather than 150k {@code String}s. Arrays read from a file
 * view the mapping and are valid only while the {@link GgufFile} is open; arrays built with the {@code of…}
 * factories own a heap copy. Element indexes are longs for fixed-size types; string and nested arrays hold at most
 * 2^31 - 9 elements.
 *
 * <p>Immutable and safe to read from several threads.
 */
public final class GgufArray {

    private static final int ABBREVIATE_AFTER = 3;

    private final GgufValueType elementType;
    private final long size;
    /** The elements exactly as encoded in GGUF, without the array's own type and count. */
    private final MemorySegment elements;
    /** For STRING and ARRAY elements: where each element starts in {@link #elements}; null for fixed-size types. */
    private final long[] starts;
    /** For ARRAY elements: the nested arrays, already validated. */
    private final List<GgufArray> children;

    GgufArray(GgufValueType elementType, long size, MemorySegment elements, long[] starts, List<GgufArray> children) {
        this.elementType = elementType;
        this.size = size;
        this.elements = elements;
        this.starts = starts;
        this.children = children;
    }

    public GgufValueType elementType() {
        return elementType;
    }

    /** Number of elements. */
    public long size() {
        return size;
    }

    /** Number of elements as an int, for arrays that Java collections and arrays can hold. */
    public int intSize() {
        if (size > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("array of %,d elements is too large for a Java array".formatted(size));
        }
        return (int) size;
    }

    MemorySegment encodedElements() {
        return elements;
    }

    /** Bytes the array takes in a file, with its element type and count fields. */
    long encodedSizeBytes() {
        return 4 + 8 + elements.byteSize();
    }

    /** The integer at {@code index}, zero-extended for unsigned types. */
    public long longAt(long index) {
        long i = checkIndex(index);
        return switch (elementType) {
            case UINT8 -> Byte.toUnsignedLong(elements.get(U8, i));
            case INT8 -> elements.get(U8, i);
            case UINT16 -> Short.toUnsignedLong(elements.get(I16, i * 2));
            case INT16 -> elements.get(I16, i * 2);
            case UINT32 -> Integer.toUnsignedLong(elements.get(I32, i * 4));
            case INT32 -> elements.get(I32, i * 4);
            case UINT64, INT64 -> elements.get(I64, i * 8);
            default -> throw wrongType("integer");
        };
    }

    /** The number at {@code index}: any integer or float type. */
    public double doubleAt(long index) {
        long i = checkIndex(index);
        return switch (elementType) {
            case FLOAT32 -> elements.get(F32, i * 4);
            case FLOAT64 -> elements.get(F64, i * 8);
            case UINT64 -> unsignedToDouble(elements.get(I64, i * 8));
            default -> {
                if (!elementType.isInteger()) {
                    throw wrongType("number");
                }
                yield longAt(index);
            }
        };
    }

    public boolean booleanAt(long index) {
        long i = checkIndex(index);
        if (elementType != GgufValueType.BOOL) {
            throw wrongType("bool");
        }
        return elements.get(U8, i) != 0;
    }

    /** The raw bytes of the string at {@code index}. */
    public byte[] stringBytesAt(long index) {
        int i = (int) checkIndex(index);
        if (elementType != GgufValueType.STRING) {
            throw wrongType("string");
        }
        long start = starts[i];
        long length = elements.get(I64, start);
        return elements.asSlice(start + 8, length).toArray(U8);
    }

    /** The string at {@code index}, malformed UTF-8 replaced by U+FFFD. */
    public String stringAt(long index) {
        return new String(stringBytesAt(index), StandardCharsets.UTF_8);
    }

    /** Byte length of the string at {@code index}, without decoding it. */
    public long stringLengthAt(long index) {
        int i = (int) checkIndex(index);
        if (elementType != GgufValueType.STRING) {
            throw wrongType("string");
        }
        return elements.get(I64, starts[i]);
    }

    public GgufArray arrayAt(long index) {
        int i = (int) checkIndex(index);
        if (elementType != GgufValueType.ARRAY) {
            throw wrongType("array");
        }
        return children.get(i);
    }

    /** The element at {@code index} as a typed value. */
    public MetadataValue valueAt(long index) {
        return switch (elementType) {
            case FLOAT32 -> new MetadataValue.Float32((float) doubleAt(index));
            case FLOAT64 -> new MetadataValue.Float64(doubleAt(index));
            case BOOL -> new MetadataValue.Bool(booleanAt(index));
            case STRING -> new MetadataValue.Str(stringBytesAt(index));
            case ARRAY -> new MetadataValue.Array(arrayAt(index));
            default -> new MetadataValue.Int(elementType, longAt(index));
        };
    }

    /** The strings as a lazy, random-access list: each {@code get} decodes one element. */
    public List<String> strings() {
        if (elementType != GgufValueType.STRING) {
            throw wrongType("string");
        }
        int n = intSize();
        return new StringList(n);
    }

    /** A copy of the elements as floats (any numeric type, converted). */
    public float[] toFloatArray() {
        float[] out = new float[intSize()];
        if (elementType == GgufValueType.FLOAT32) {
            MemorySegment.copy(elements, F32, 0, out, 0, out.length);
            return out;
        }
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) doubleAt(i);
        }
        return out;
    }

    /** A copy of the elements as ints; every value must fit. */
    public int[] toIntArray() {
        if (!elementType.isInteger()) {
            throw wrongType("integer");
        }
        int[] out = new int[intSize()];
        for (int i = 0; i < out.length; i++) {
            long v = longAt(i);
            if (v != (int) v || (elementType == GgufValueType.UINT64 && v < 0)) {
                throw new IllegalStateException("element %d = %s does not fit an int".formatted(i, valueAt(i)));
            }
            out[i] = (int) v;
        }
        return out;
    }

    /** A copy of the elements as longs (unsigned 64-bit values above 2^63 come out negative). */
    public long[] toLongArray() {
        if (!elementType.isInteger()) {
            throw wrongType("integer");
        }
        long[] out = new long[intSize()];
        for (int i = 0; i < out.length; i++) {
            out[i] = longAt(i);
        }
        return out;
    }

    private long checkIndex(long index) {
        return Objects.checkIndex(index, size);
    }

    private IllegalStateException wrongType(String wanted) {
        return new IllegalStateException("array of %s has no %s elements".formatted(elementType, wanted));
    }

    private static double unsignedToDouble(long bits) {
        return bits >= 0 ? bits : (double) (bits >>> 1) * 2.0 + (bits & 1);
    }

    private final class StringList extends AbstractList<String> implements RandomAccess {
        private final int n;

        StringList(int n) {
            this.n = n;
        }

        @Override
        public String get(int index) {
            return stringAt(index);
        }

        @Override
        public int size() {
            return n;
        }
    }

    // ---- factories for arrays built in memory (for the writer) ----

    public static GgufArray ofStrings(List<String> values) {
        var out = new Encoder();
        long[] starts = new long[values.size()];
        for (int i = 0; i < starts.length; i++) {
            starts[i] = out.size();
            byte[] b = values.get(i).getBytes(StandardCharsets.UTF_8);
            out.i64(b.length);
            out.write(b, 0, b.length);
        }
        return new GgufArray(GgufValueType.STRING, starts.length, out.segment(), starts, null);
    }

    public static GgufArray ofFloat32(float... values) {
        var out = new Encoder();
        for (float v : values) {
            out.i32(Float.floatToRawIntBits(v));
        }
        return new GgufArray(GgufValueType.FLOAT32, values.length, out.segment(), null, null);
    }

    public static GgufArray ofFloat64(double... values) {
        var out = new Encoder();
        for (double v : values) {
            out.i64(Double.doubleToRawLongBits(v));
        }
        return new GgufArray(GgufValueType.FLOAT64, values.length, out.segment(), null, null);
    }

    public static GgufArray ofBools(boolean... values) {
        var out = new Encoder();
        for (boolean v : values) {
            out.write(v ? 1 : 0);
        }
        return new GgufArray(GgufValueType.BOOL, values.length, out.segment(), null, null);
    }

    /** An integer array of {@code type}; every value must fit it (unsigned 64-bit values are taken as bits). */
    public static GgufArray ofIntegers(GgufValueType type, long... values) {
        var out = new Encoder();
        for (long v : values) {
            new MetadataValue.Int(type, v); // range check, with the same message as a scalar
            switch (type.sizeBytes()) {
                case 1 -> out.write((int) v);
                case 2 -> out.i16((int) v);
                case 4 -> out.i32((int) v);
                default -> out.i64(v);
            }
        }
        return new GgufArray(type, values.length, out.segment(), null, null);
    }

    public static GgufArray ofInt32(int... values) {
        long[] wide = new long[values.length];
        for (int i = 0; i < values.length; i++) {
            wide[i] = values[i];
        }
        return ofIntegers(GgufValueType.INT32, wide);
    }

    /** An array of arrays (each child keeps its own element type, as GGUF allows). */
    public static GgufArray ofArrays(List<GgufArray> values) {
        var out = new Encoder();
        long[] starts = new long[values.size()];
        for (int i = 0; i < starts.length; i++) {
            starts[i] = out.size();
            GgufArray child = values.get(i);
            out.i32(child.elementType.id());
            out.i64(child.size);
            out.write(child.elements.toArray(U8), 0, (int) child.elements.byteSize());
        }
        return new GgufArray(GgufValueType.ARRAY, starts.length, out.segment(), starts, List.copyOf(values));
    }

    /** Same element type and the same encoded bytes. */
    @Override
    public boolean equals(Object o) {
        return o instanceof GgufArray a
                && a.elementType == elementType
                && a.size == size
                && a.elements.byteSize() == elements.byteSize()
                && a.elements.mismatch(elements) < 0;
    }

    @Override
    public int hashCode() {
        return Objects.hash(elementType, size);
    }

    /** Abbreviated: {@code [512 strings: "<unk>", "<s>", "</s>", …]}; at most three elements, strings cut short. */
    @Override
    public String toString() {
        var sb = new StringBuilder("[").append(String.format("%,d", size)).append(' ').append(noun()).append(": ");
        long shown = Math.min(size, ABBREVIATE_AFTER);
        for (long i = 0; i < shown; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            switch (elementType) {
                case STRING -> sb.append(quote(stringAt(i), 40));
                case ARRAY -> sb.append(arrayAt(i));
                default -> sb.append(valueAt(i));
            }
        }
        if (size > shown) {
            sb.append(", …");
        }
        if (size == 0) {
            sb.setLength(sb.length() - 2);
        }
        return sb.append(']').toString();
    }

    private String noun() {
        String name = switch (elementType) {
            case STRING -> "string";
            case ARRAY -> "array";
            case BOOL -> "bool";
            default -> elementType.name().toLowerCase();
        };
        return size == 1 ? name : name + "s";
    }

    /** Quotes and escapes {@code s} for display, cut to {@code maxChars} characters with an ellipsis. */
    static String quote(String s, int maxChars) {
        var sb = new StringBuilder("\"");
        int n = Math.min(s.length(), maxChars);
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\t' -> sb.append("\\t");
                case '\r' -> sb.append("\\r");
                default -> {
                    if (c < 0x20 || c == 0x7F) {
                        sb.append(String.format("\\x%02x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        if (s.length() > n) {
            sb.append('…');
        }
        return sb.append('"').toString();
    }

    /** Little-endian byte sink for arrays built in memory. */
    private static final class Encoder extends ByteArrayOutputStream {
        void i16(int v) {
            write(v);
            write(v >>> 8);
        }

        void i32(int v) {
            i16(v);
            i16(v >>> 16);
        }

        void i64(long v) {
            i32((int) v);
            i32((int) (v >>> 32));
        }

        MemorySegment segment() {
            return MemorySegment.ofArray(toByteArray());
        }
    }
}
