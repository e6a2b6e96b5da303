package aether.llm.gguf;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The key/value metadata of a GGUF file, in file order, each value with its exact type. The typed accessors return a
 * default when a key is absent and throw {@link GgufFormatException} (naming the key, the expected and the found type)
 * when it is present with the wrong type or a value that does not fit; {@code require…} variants also throw when the
 * key is absent. Array values read from a file are views valid while the file is open.
 *
 * <p>Immutable; build new metadata with {@link #builder()} or {@link #toBuilder()}.
 */
public final class GgufMetadata {

    /** The default of {@code general.alignment}. */
    public static final int DEFAULT_ALIGNMENT = 32;
    public static final String ALIGNMENT_KEY = "general.alignment";

    /** A value and where its key starts in the file (-1 for values built in memory). */
    record Entry(MetadataValue value, long offset) {}

    private final Path file;
    private final Map<String, Entry> entries;

    GgufMetadata(Path file, LinkedHashMap<String, Entry> entries) {
        this.file = file;
        this.entries = Collections.unmodifiableMap(entries);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder starting with these entries, in this order. */
    public Builder toBuilder() {
        var b = new Builder();
        entries.forEach((k, e) -> b.put(k, e.value()));
        return b;
    }

    public int size() {
        return entries.size();
    }

    /** Keys in file order. */
    public Set<String> keys() {
        return entries.keySet();
    }

    public boolean contains(String key) {
        return entries.containsKey(key);
    }

    public Optional<MetadataValue> get(String key) {
        Entry e = entries.get(key);
        return e == null ? Optional.empty() : Optional.of(e.value());
    }

    /** Byte offset of the key's entry in the file, or -1 if absent or built in memory. */
    public long offsetOf(String key) {
        Entry e = entries.get(key);
        return e == null ? -1 : e.offset();
    }

    /** All entries in file order, as an unmodifiable map view. */
    public Map<String, MetadataValue> asMap() {
        var m = new LinkedHashMap<String, MetadataValue>();
        entries.forEach((k, e) -> m.put(k, e.value()));
        return Collections.unmodifiableMap(m);
    }

    // ---- typed accessors ----

    public long getLong(String key, long defaultValue) {
        return contains(key) ? requireLong(key) : defaultValue;
    }

    public int getInt(String key, int defaultValue) {
        return contains(key) ? requireInt(key) : defaultValue;
    }

    public double getDouble(String key, double defaultValue) {
        return contains(key) ? requireDouble(key) : defaultValue;
    }

    public float getFloat(String key, float defaultValue) {
        return contains(key) ? requireFloat(key) : defaultValue;
    }

    public boolean getBoolean(String key, boolean defaultValue) {
        return contains(key) ? requireBoolean(key) : defaultValue;
    }

    public String getString(String key, String defaultValue) {
        return contains(key) ? requireString(key) : defaultValue;
    }

    public Optional<String> getString(String key) {
        return contains(key) ? Optional.of(requireString(key)) : Optional.empty();
    }

    public Optional<GgufArray> getArray(String key) {
        return contains(key) ? Optional.of(requireArray(key)) : Optional.empty();
    }

    public List<String> getStringArray(String key, List<String> defaultValue) {
        return contains(key) ? requireStringArray(key) : defaultValue;
    }

    public float[] getFloatArray(String key, float[] defaultValue) {
        return contains(key) ? requireFloatArray(key) : defaultValue;
    }

    public int[] getIntArray(String key, int[] defaultValue) {
        return contains(key) ? requireIntArray(key) : defaultValue;
    }

    /** An integer of any width whose value fits a long (not a {@code UINT64} above 2^63 - 1). */
    public long requireLong(String key) {
        if (require(key) instanceof MetadataValue.Int i) {
            if (!i.fitsLong()) {
                throw mismatch(key, "an integer that fits a long, found UINT64 " + i);
            }
            return i.value();
        }
        throw mismatch(key, "an integer");
    }

    /** An integer of any width whose value fits an int. */
    public int requireInt(String key) {
        long v = requireLong(key);
        if (v != (int) v) {
            throw mismatch(key, "an integer that fits an int, found %s %,d".formatted(require(key).type(), v));
        }
        return (int) v;
    }

    /** A number: FLOAT32, FLOAT64 or any integer. */
    public double requireDouble(String key) {
        return switch (require(key)) {
            case MetadataValue.Float32 f -> f.value();
            case MetadataValue.Float64 f -> f.value();
            case MetadataValue.Int i -> i.fitsLong() ? i.value() : Double.parseDouble(i.toString());
            default -> throw mismatch(key, "a number");
        };
    }

    public float requireFloat(String key) {
        return (float) requireDouble(key);
    }

    public boolean requireBoolean(String key) {
        if (require(key) instanceof MetadataValue.Bool b) {
            return b.value();
        }
        throw mismatch(key, "a BOOL");
    }

    public String requireString(String key) {
        if (require(key) instanceof MetadataValue.Str s) {
            return s.text();
        }
        throw mismatch(key, "a STRING");
    }

    public GgufArray requireArray(String key) {
        if (require(key) instanceof MetadataValue.Array a) {
            return a.array();
        }
        throw mismatch(key, "an ARRAY");
    }

    /** An array of strings, as a lazy list that decodes each element on access. */
    public List<String> requireStringArray(String key) {
        GgufArray a = requireArray(key);
        if (a.elementType() != GgufValueType.STRING) {
            throw mismatch(key, "an ARRAY of STRING");
        }
        checkJavaSize(key, a);
        return a.strings();
    }

    /** An array of any numeric type, converted to floats. */
    public float[] requireFloatArray(String key) {
        GgufArray a = requireArray(key);
        if (!a.elementType().isFloat() && !a.elementType().isInteger()) {
            throw mismatch(key, "an ARRAY of numbers");
        }
        checkJavaSize(key, a);
        return a.toFloatArray();
    }

    /** An array of integers that all fit an int. */
    public int[] requireIntArray(String key) {
        GgufArray a = requireArray(key);
        if (!a.elementType().isInteger()) {
            throw mismatch(key, "an ARRAY of integers");
        }
        checkJavaSize(key, a);
        try {
            return a.toIntArray();
        } catch (IllegalStateException e) {
            throw new GgufFormatException(file, offsetOf(key), "metadata '" + key + "'", e.getMessage());
        }
    }

    /** The value, or a {@link GgufFormatException} naming the missing key. */
    public MetadataValue require(String key) {
        Entry e = entries.get(key);
        if (e == null) {
            throw new GgufFormatException(file, -1, "metadata '" + key + "'", "required key is missing");
        }
        return e.value();
    }

    private void checkJavaSize(String key, GgufArray a) {
        if (a.size() > Integer.MAX_VALUE - 8) {
            throw mismatch(key, "an array of at most 2^31 - 9 elements");
        }
    }

    private GgufFormatException mismatch(String key, String expected) {
        MetadataValue v = require(key);
        String found = expected.contains(", found ") ? "" : ", found " + describe(v);
        return new GgufFormatException(file, offsetOf(key), "metadata '" + key + "'", "expected " + expected + found);
    }

    private static String describe(MetadataValue v) {
        return v instanceof MetadataValue.Array a ? "ARRAY of " + a.array().elementType() : v.type().name();
    }

    /** Collects entries in insertion order; a duplicate key is rejected. */
    public static final class Builder {
        private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>();

        private Builder() {}

        /** Adds a new key; throws {@link IllegalArgumentException} if it is already present. */
        public Builder put(String key, MetadataValue value) {
            if (entries.putIfAbsent(key, new Entry(value, -1)) != null) {
                throw new IllegalArgumentException("duplicate metadata key '" + key + "'");
            }
            return this;
        }

        /** Adds the key or replaces its value in place, keeping its position. */
        public Builder set(String key, MetadataValue value) {
            entries.put(key, new Entry(value, -1));
            return this;
        }

        public Builder remove(String key) {
            entries.remove(key);
            return this;
        }

        public Builder putString(String key, String value) {
            return put(key, MetadataValue.Str.of(value));
        }

        public Builder putUInt32(String key, long value) {
            return put(key, MetadataValue.uint32(value));
        }

        public Builder putInt32(String key, int value) {
            return put(key, MetadataValue.int32(value));
        }

        public Builder putUInt64(String key, long value) {
            return put(key, MetadataValue.uint64(value));
        }

        public Builder putFloat32(String key, float value) {
            return put(key, new MetadataValue.Float32(value));
        }

        public Builder putBool(String key, boolean value) {
            return put(key, new MetadataValue.Bool(value));
        }

        public Builder putArray(String key, GgufArray value) {
            return put(key, new MetadataValue.Array(value));
        }

        public GgufMetadata build() {
            return new GgufMetadata(null, new LinkedHashMap<>(entries));
        }
    }
}
