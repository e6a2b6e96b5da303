package aether.llm.gguf;

import static aether.llm.gguf.LittleEndian.F32;
import static aether.llm.gguf.LittleEndian.F64;
import static aether.llm.gguf.LittleEndian.I16;
import static aether.llm.gguf.LittleEndian.I32;
import static aether.llm.gguf.LittleEndian.I64;
import static aether.llm.gguf.LittleEndian.U8;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;

/**
 * Parses and validates a GGUF header from bytes it does not trust. Every count and length is checked against the
 * bytes that remain before anything is allocated or skipped, so a corrupt file ends in a {@link GgufFormatException}
 * in time linear in its size, never in an out-of-memory error, a read past the end or a hang.
 *
 * <p>Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic "GGUF", uint32 version, uint64
 * tensor_count, uint64 metadata_kv_count, the key/value pairs, the tensor infos, padding to {@code general.alignment},
 * then the data section. One instance reads one file once; not thread-safe.
 */
final class GgufReader {

    static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
    static final int MAX_DIMS = 4; // GGML_MAX_DIMS
    static final int MAX_NAME_BYTES = 63; // GGML_MAX_NAME - 1: llama.cpp keeps names in char[64]
    static final int MAX_KEY_BYTES = 65_535; // the spec limits keys to 2^16 - 1 bytes
    static final int MAX_NESTING = 16;
    static final int MAX_JAVA_ARRAY = Integer.MAX_VALUE - 8;
    /** Fewest bytes a key/value pair can take: key length, type, a one-byte value. */
    static final int MIN_KV_BYTES = 8 + 4 + 1;
    /** Fewest bytes a tensor info can take: name length, n_dims, type, offset. */
    static final int MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;

    /** What a successful parse found. {@code dataStart} may lie past the end of a file without tensors. */
    record Header(int version, GgufMetadata metadata, List<TensorInfo> tensors, long headerEnd, int alignment,
                  long dataStart) {}

    private final Path file;
    private final MemorySegment bytes;
    private final long size;
    private long position;

    private GgufReader(Path file, MemorySegment bytes) {
        this.file = file;
        this.bytes = bytes;
        this.size = bytes.byteSize();
    }

    static Header read(Path file, MemorySegment bytes) {
        return new GgufReader(file, bytes).header();
    }

    private Header header() {
        if (size < 4) {
            throw error(0, "header.magic", "file has %d bytes; a GGUF file starts with the 4-byte magic \"GGUF\"".formatted(size));
        }
        int magic = bytes.get(I32, 0);
        if (magic != MAGIC) {
            throw error(0, "header.magic", "expected \"GGUF\" (47 47 55 46), found %s".formatted(showMagic()));
        }
        position = 4;
        long versionAt = position;
        int version = u32("header.version");
        if (version != 2 && version != 3) {
            String hint = version == 1 ? " (GGUF v1 used 32-bit counts; convert the file with a current llama.cpp)"
                    : Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3 ? " (a big-endian file)" : "";
            throw error(versionAt, "header.version",
                    "unsupported GGUF version %s, expected 2 or 3%s".formatted(Integer.toUnsignedString(version), hint));
        }
        long tensorCountAt = position;
        long tensorCount = u64("header.tensor_count");
        long kvCountAt = position;
        long kvCount = u64("header.metadata_kv_count");
        // Checked against the bytes that remain before anything depends on them.
        checkCount(kvCountAt, "header.metadata_kv_count", kvCount, MIN_KV_BYTES, "metadata entries");
        checkCount(tensorCountAt, "header.tensor_count", tensorCount,
                MIN_TENSOR_INFO_BYTES, "tensor infos");
        if (Math.addExact(Math.multiplyExact(kvCount, MIN_KV_BYTES), Math.multiplyExact(tensorCount, MIN_TENSOR_INFO_BYTES))
                > remaining()) {
            throw error(kvCountAt, "header", "%,d metadata entries and %,d tensor infos need at least %,d bytes, only %,d remain"
                    .formatted(kvCount, tensorCount, kvCount * MIN_KV_BYTES + tensorCount * MIN_TENSOR_INFO_BYTES, remaining()));
        }

        if (tensorCount > MAX_JAVA_ARRAY) {
            throw error(tensorCountAt, "header.tensor_count", "%,d tensors exceed the supported %,d".formatted(tensorCount, MAX_JAVA_ARRAY));
        }
        GgufMetadata metadata = readMetadata(kvCount);
        List<TensorInfo> tensors = new ArrayList<>((int) tensorCount);
        long[] infoOffsets = new long[(int) tensorCount];
        var names = new HashSet<String>();
        for (int i = 0; i < tensorCount; i++) {
            infoOffsets[i] = position;
            TensorInfo t = readTensorInfo(i);
            if (!names.add(t.name())) {
                throw error(infoOffsets[i], "tensor #%d '%s'".formatted(i, t.name()), "duplicate tensor name");
            }
            tensors.add(t);
        }
        long headerEnd = position;
        int alignment = alignment(metadata);
        long dataStart = alignUp(headerEnd, alignment);
        checkTensorPlacement(tensors, infoOffsets, alignment, dataStart);
        return new Header(version, metadata, List.copyOf(tensors), headerEnd, alignment, dataStart);
    }

    // ---- metadata ----

    private GgufMetadata readMetadata(long kvCount) {
        var entries = new LinkedHashMap<String, GgufMetadata.Entry>();
        for (long i = 0; i < kvCount; i++) {
            long at = position;
            String key = readName("metadata key #" + i, MAX_KEY_BYTES);
            String field = "metadata '" + key + "'";
            GgufValueType type = readType(field + " type");
            MetadataValue value = readValue(type, field, 0);
            if (entries.putIfAbsent(key, new GgufMetadata.Entry(value, at)) != null) {
                throw error(at, field, "duplicate key (first at offset %d)".formatted(entries.get(key).offset()));
            }
        }
        return new GgufMetadata(file, entries);
    }

    private MetadataValue readValue(GgufValueType type, String field, int depth) {
        return switch (type) {
            case UINT8 -> new MetadataValue.Int(type, Byte.toUnsignedLong(u8(field)));
            case INT8 -> new MetadataValue.Int(type, u8(field));
            case UINT16 -> new MetadataValue.Int(type, Short.toUnsignedLong(i16(field)));
            case INT16 -> new MetadataValue.Int(type, i16(field));
            case UINT32 -> new MetadataValue.Int(type, Integer.toUnsignedLong(u32(field)));
            case INT32 -> new MetadataValue.Int(type, u32(field));
            case UINT64, INT64 -> new MetadataValue.Int(type, u64(field));
            case FLOAT32 -> new MetadataValue.Float32(f32(field));
            case FLOAT64 -> new MetadataValue.Float64(f64(field));
            case BOOL -> new MetadataValue.Bool(readBool(field));
            case STRING -> new MetadataValue.Str(readStringBytes(field));
            case ARRAY -> new MetadataValue.Array(readArray(field, depth));
        };
    }

    private boolean readBool(String field) {
        long at = position;
        byte b = u8(field);
        if (b != 0 && b != 1) {
            throw error(at, field, "a BOOL must be 0 or 1, found %d".formatted(Byte.toUnsignedInt(b)));
        }
        return b == 1;
    }

    private GgufArray readArray(String field, int depth) {
        long at = position;
        if (depth >= MAX_NESTING) {
            throw error(at, field, "arrays nested deeper than %d levels".formatted(MAX_NESTING));
        }
        GgufValueType elementType = readType(field + " element type");
        long countAt = position;
        long count = u64(field + " count");
        int min = elementType.minSizeBytes();
        if (count < 0 || count > remaining() / min) {
            throw error(countAt, field, "array of %s %s needs at least %s bytes, only %,d remain".formatted(
                    Long.toUnsignedString(count), elementType, count < 0 ? "2^63" : "%,d".formatted(count * min), remaining()));
        }
        long start = position;
        switch (elementType) {
            case STRING, ARRAY -> {
                if (count > MAX_JAVA_ARRAY) {
                    throw error(countAt, field, "array of %,d %s exceeds the supported %,d elements"
                            .formatted(count, elementType, MAX_JAVA_ARRAY));
                }
                long[] starts = new long[(int) count];
                List<GgufArray> children = elementType == GgufValueType.ARRAY ? new ArrayList<>((int) count) : null;
                for (int i = 0; i < starts.length; i++) {
                    starts[i] = position - start;
                    if (children != null) {
                        children.add(readArray(field + "[" + i + "]", depth + 1));
                    } else {
                        skipString(field + "[" + i + "]");
                    }
                }
                return new GgufArray(elementType, count, bytes.asSlice(start, position - start), starts, children);
            }
            case BOOL -> {
                for (long i = 0; i < count; i++) {
                    readBool(field + "[" + i + "]");
                }
                return new GgufArray(elementType, count, bytes.asSlice(start, count), null, null);
            }
            default -> {
                long length = count * elementType.sizeBytes(); // fits: count <= remaining / size
                position += length;
                return new GgufArray(elementType, count, bytes.asSlice(start, length), null, null);
            }
        }
    }

    private GgufValueType readType(String field) {
        long at = position;
        int id = u32(field);
        Optional<GgufValueType> type = GgufValueType.byId(Integer.toUnsignedLong(id));
        if (type.isEmpty()) {
            throw error(at, field, "unknown value type %s, expected 0..12".formatted(Integer.toUnsignedString(id)));
        }
        return type.get();
    }

    // ---- strings ----

    /** Reads a string's length and checks it against the bytes that remain; returns the length. */
    private long stringLength(String field) {
        long at = position;
        long length = u64(field + " length");
        if (length < 0 || length > remaining()) {
            throw error(at, field, "string of %s bytes, only %,d remain".formatted(Long.toUnsignedString(length), remaining()));
        }
        return length;
    }

    private void skipString(String field) {
        long length = stringLength(field); // not "position += stringLength(...)": that adds to the old position
        position += length;
    }

    private byte[] readStringBytes(String field) {
        long at = position;
        long length = stringLength(field);
        if (length > MAX_JAVA_ARRAY) {
            throw error(at, field, "string of %,d bytes exceeds the supported %,d".formatted(length, MAX_JAVA_ARRAY));
        }
        byte[] b = bytes.asSlice(position, length).toArray(U8);
        position += length;
        return b;
    }

    /** A key or tensor name: bounded length, valid UTF-8 (these identify things, so no replacement characters). */
    private String readName(String field, int maxBytes) {
        long at = position;
        long length = stringLength(field);
        if (length > maxBytes) {
            throw error(at, field, "name of %,d bytes, at most %,d allowed".formatted(length, maxBytes));
        }
        byte[] b = bytes.asSlice(position, length).toArray(U8);
        position += length;
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(b))
                    .toString();
        } catch (CharacterCodingException e) {
            throw error(at, field, "name is not valid UTF-8: %s".formatted(
                    GgufArray.quote(new String(b, StandardCharsets.UTF_8), 80)));
        }
    }

    // ---- tensors ----

    private TensorInfo readTensorInfo(int index) {
        long at = position;
        String name = readName("tensor #" + index + " name", MAX_NAME_BYTES);
        String field = "tensor '" + name + "'";
        long dimsAt = position;
        int dims = u32(field + " n_dims");
        if (dims < 0 || dims > MAX_DIMS) {
            throw error(dimsAt, field, "n_dims is %s, expected 0..%d".formatted(Integer.toUnsignedString(dims), MAX_DIMS));
        }
        long[] shape = new long[dims];
        for (int d = 0; d < dims; d++) {
            long dimAt = position;
            shape[d] = u64(field + " ne[" + d + "]");
            if (shape[d] < 0) {
                throw error(dimAt, field, "ne[%d] = %d is negative".formatted(d, shape[d]));
            }
        }
        long typeAt = position;
        int typeId = u32(field + " type");
        GgmlType type = GgmlType.byId(Integer.toUnsignedLong(typeId)).orElseThrow(() -> error(typeAt, field,
                "unknown ggml type id %s".formatted(Integer.toUnsignedString(typeId))));
        long offsetAt = position;
        long offset = u64(field + " offset");
        if (offset < 0) {
            throw error(offsetAt, field, "data offset %s exceeds 2^63".formatted(Long.toUnsignedString(offset)));
        }
        long sizeBytes;
        try {
            sizeBytes = type.bytesFor(shape);
            long elements = 1; // checked apart from the bytes: a block type packs more elements than bytes
            for (long d : shape) {
                elements = Math.multiplyExact(elements, d);
            }
        } catch (IllegalArgumentException e) {
            throw error(at, field, "shape %s: %s".formatted(Arrays.toString(shape), e.getMessage()));
        } catch (ArithmeticException e) {
            throw error(at, field, "shape %s of %s overflows a 64-bit size".formatted(Arrays.toString(shape), type));
        }
        return new TensorInfo(name, type, shape, offset, sizeBytes);
    }

    private int alignment(GgufMetadata metadata) {
        var value = metadata.get(GgufMetadata.ALIGNMENT_KEY);
        if (value.isEmpty()) {
            return GgufMetadata.DEFAULT_ALIGNMENT;
        }
        long at = metadata.offsetOf(GgufMetadata.ALIGNMENT_KEY);
        String field = "metadata '" + GgufMetadata.ALIGNMENT_KEY + "'";
        if (!(value.get() instanceof MetadataValue.Int i)) {
            throw error(at, field, "expected an integer, found " + value.get().type());
        }
        long a = i.value();
        if (a <= 0 || a > (1 << 30) || Long.bitCount(a) != 1) {
            throw error(at, field, "expected a power of two in 1..2^30, found %s".formatted(i));
        }
        return (int) a;
    }

    private void checkTensorPlacement(List<TensorInfo> tensors, long[] infoOffsets, int alignment, long dataStart) {
        if (tensors.isEmpty()) {
            return;
        }
        if (dataStart > size) {
            throw error(position, "data section", "%,d tensors need a data section at offset %,d, but the file ends at %,d"
                    .formatted(tensors.size(), dataStart, size));
        }
        long dataBytes = size - dataStart;
        for (int i = 0; i < tensors.size(); i++) {
            TensorInfo t = tensors.get(i);
            String field = "tensor '" + t.name() + "'";
            if (t.offset() % alignment != 0) {
                throw error(infoOffsets[i], field, "data offset %,d is not a multiple of the alignment %d"
                        .formatted(t.offset(), alignment));
            }
            if (t.offset() > dataBytes || t.sizeBytes() > dataBytes - t.offset()) {
                throw error(infoOffsets[i], field, "data needs %,d bytes at offset %,d, only %,d remain".formatted(
                        t.sizeBytes(), dataStart + t.offset(), Math.max(0, size - dataStart - t.offset())));
            }
        }
        Integer[] order = new Integer[tensors.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, Comparator.comparingLong(i -> tensors.get(i).offset()));
        TensorInfo reaching = null; // the non-empty tensor whose data reaches furthest so far
        for (int k : order) {
            TensorInfo t = tensors.get(k);
            if (t.sizeBytes() == 0) {
                continue;
            }
            if (reaching != null && t.offset() < reaching.offset() + reaching.sizeBytes()) {
                throw error(infoOffsets[k], "tensor '" + t.name() + "'",
                        "data [%,d, %,d) overlaps tensor '%s' at [%,d, %,d)".formatted(t.offset(), t.offset() + t.sizeBytes(),
                                reaching.name(), reaching.offset(), reaching.offset() + reaching.sizeBytes()));
            }
            if (reaching == null || t.offset() + t.sizeBytes() > reaching.offset() + reaching.sizeBytes()) {
                reaching = t;
            }
        }
    }

    // ---- primitives ----

    private long remaining() {
        return size - position;
    }

    private void need(int n, String field) {
        if (n > remaining()) {
            throw error(position, field, "needs %d bytes, only %d remain (file truncated?)".formatted(n, remaining()));
        }
    }

    private void checkCount(long at, String field, long count, int minBytes, String what) {
        if (count < 0 || count > remaining() / minBytes) {
            throw error(at, field, "%s %s need at least %s bytes, only %,d remain".formatted(
                    Long.toUnsignedString(count), what, count < 0 ? "2^63" : "%,d".formatted(count * minBytes), remaining()));
        }
    }

    private byte u8(String field) {
        need(1, field);
        return bytes.get(U8, position++);
    }

    private short i16(String field) {
        need(2, field);
        short v = bytes.get(I16, position);
        position += 2;
        return v;
    }

    private float f32(String field) {
        need(4, field);
        float v = bytes.get(F32, position);
        position += 4;
        return v;
    }

    private double f64(String field) {
        need(8, field);
        double v = bytes.get(F64, position);
        position += 8;
        return v;
    }

    private int u32(String field) {
        need(4, field);
        int v = bytes.get(I32, position);
        position += 4;
        return v;
    }

    private long u64(String field) {
        need(8, field);
        long v = bytes.get(I64, position);
        position += 8;
        return v;
    }

    static long alignUp(long offset, int alignment) {
        long mask = alignment - 1L;
        return (offset + mask) & ~mask;
    }

    private String showMagic() {
        var sb = new StringBuilder("\"");
        for (int i = 0; i < 4; i++) {
            int c = Byte.toUnsignedInt(bytes.get(U8, i));
            sb.append(c >= 0x20 && c < 0x7F ? String.valueOf((char) c) : "\\x%02x".formatted(c));
        }
        sb.append("\" (");
        for (int i = 0; i < 4; i++) {
            sb.append(i > 0 ? " " : "").append("%02x".formatted(Byte.toUnsignedInt(bytes.get(U8, i))));
        }
        return sb.append(')').toString();
    }

    private GgufFormatException error(long at, String field, String detail) {
        return new GgufFormatException(file, at, field, detail);
    }
}
