package aether.llm.gguf;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Builds GGUF bytes by hand, field by field, independently of {@link GgufWriter}, so tests can write exactly the
 * corrupt file they mean and know the offset of every field ({@link #mark}).
 */
final class GgufBytes {

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final Map<String, Integer> marks = new HashMap<>();

    /** Magic, version, tensor count, kv count. */
    static GgufBytes header(int version, long tensorCount, long kvCount) {
        return new GgufBytes().raw("GGUF".getBytes(StandardCharsets.US_ASCII)).u32(version).u64(tensorCount).u64(kvCount);
    }

    GgufBytes mark(String name) {
        marks.put(name, out.size());
        return this;
    }

    int at(String name) {
        return marks.get(name);
    }

    int size() {
        return out.size();
    }

    GgufBytes raw(byte... b) {
        out.writeBytes(b);
        return this;
    }

    GgufBytes u8(int v) {
        out.write(v);
        return this;
    }

    GgufBytes u16(int v) {
        return u8(v).u8(v >>> 8);
    }

    GgufBytes u32(int v) {
        return u16(v).u16(v >>> 16);
    }

    GgufBytes u64(long v) {
        return u32((int) v).u32((int) (v >>> 32));
    }

    GgufBytes f32(float v) {
        return u32(Float.floatToRawIntBits(v));
    }

    GgufBytes f64(double v) {
        return u64(Double.doubleToRawLongBits(v));
    }

    GgufBytes str(String s) {
        return str(s.getBytes(StandardCharsets.UTF_8));
    }

    GgufBytes str(byte[] b) {
        return u64(b.length).raw(b);
    }

    /** A key and its type id; the caller writes the value. */
    GgufBytes key(String key, GgufValueType type) {
        return str(key).u32(type.id());
    }

    GgufBytes kvU32(String key, int value) {
        return key(key, GgufValueType.UINT32).u32(value);
    }

    GgufBytes kvString(String key, String value) {
        return key(key, GgufValueType.STRING).str(value);
    }

    /** A tensor info: name, n_dims, ne..., type id, offset. */
    GgufBytes tensor(String name, int typeId, long offset, long... ne) {
        str(name).u32(ne.length);
        for (long d : ne) {
            u64(d);
        }
        return u32(typeId).u64(offset);
    }

    /** Zero bytes up to the next multiple of {@code alignment}. */
    GgufBytes pad(int alignment) {
        while (out.size() % alignment != 0) {
            out.write(0);
        }
        return this;
    }

    GgufBytes zeros(int n) {
        out.writeBytes(new byte[n]);
        return this;
    }

    byte[] bytes() {
        return out.toByteArray();
    }

    GgufFile read() {
        return read(bytes());
    }

    static GgufFile read(byte[] bytes) {
        return GgufFile.read(Path.of("hand-built.gguf"), MemorySegment.ofArray(bytes));
    }
}
