package aether.llm.gguf;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.lifecycle.BeforeContainer;
import net.jqwik.api.statistics.Statistics;

/**
 * Corrupts real GGUF files in memory (bit flips, byte overwrites, truncations, huge counts and lengths written into
 * the length/count fields) and checks that opening and walking the result either succeeds or throws
 * {@link GgufFormatException}: never an out-of-memory error, an out-of-bounds read, a negative array size or anything
 * else. 4 × 2,500 = 10,000 cases.
 */
class GgufFuzzProperties {

    private static final String[] FILES = {
        "models/stories260K.gguf",
        "models/vocab/ggml-vocab-llama-spm.gguf",
        "models/vocab/ggml-vocab-bert-bge.gguf",
        "models/vocab/ggml-vocab-phi-3.gguf",
        "golden/quant/models/quant-a-q4_k_m.gguf",
        "golden/forward/models/rand-gemma2-swa-s1-f16.gguf",
    };
    private static final long[] HUGE = {
        Long.MAX_VALUE, Long.MIN_VALUE, -1L, 1_000_000_000_000L, 1_000_000_000L, 1L << 32, 1L << 31, (1L << 31) - 1,
        0xFFFF_FFFFL, 1L << 40, 0, 1, 65, 1L << 62,
    };

    private static List<Sample> samples;

    /** A real file, its header length and the offsets of its count/length/type fields. */
    record Sample(Path path, byte[] bytes, long headerBytes, List<Field> fields) {}

    /** A field of {@code width} bytes at {@code offset} (8 for counts and lengths, 4 for types and n_dims). */
    record Field(long offset, int width) {}

    @BeforeContainer
    static void loadFiles() {
        samples = new ArrayList<>();
        for (String name : FILES) {
            Path p = aether.runtime.testing.SharedData.require(name);
            try {
                byte[] bytes = Files.readAllBytes(p);
                long headerBytes;
                try (GgufFile f = GgufFile.open(p)) {
                    headerBytes = f.headerBytes();
                }
                samples.add(new Sample(p, bytes, headerBytes, FieldMap.of(bytes)));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    @Property(tries = 2500)
    void bitFlipsFailCleanly(@ForAll @IntRange(max = 5) int file, @ForAll long seed) {
        Sample s = samples.get(file);
        var random = new Random(seed);
        byte[] b = s.bytes().clone();
        int flips = 1 + random.nextInt(8);
        for (int i = 0; i < flips; i++) {
            int at = position(random, s);
            b[at] ^= (byte) (1 << random.nextInt(8));
        }
        Statistics.label("outcome").collect(openAndWalk(s, b));
    }

    @Property(tries = 2500)
    void byteOverwritesFailCleanly(@ForAll @IntRange(max = 5) int file, @ForAll long seed) {
        Sample s = samples.get(file);
        var random = new Random(seed);
        byte[] b = s.bytes().clone();
        int runs = 1 + random.nextInt(4);
        for (int r = 0; r < runs; r++) {
            int at = position(random, s);
            int length = 1 + random.nextInt(16);
            byte value = switch (random.nextInt(3)) {
                case 0 -> (byte) 0xFF;
                case 1 -> 0;
                default -> (byte) random.nextInt(256);
            };
            for (int i = at; i < Math.min(b.length, at + length); i++) {
                b[i] = random.nextBoolean() ? value : (byte) random.nextInt(256);
            }
        }
        Statistics.label("outcome").collect(openAndWalk(s, b));
    }

    @Property(tries = 2500)
    void truncationsFailCleanly(@ForAll @IntRange(max = 5) int file, @ForAll long seed) {
        Sample s = samples.get(file);
        var random = new Random(seed);
        int cut = random.nextBoolean() ? position(random, s) : random.nextInt(s.bytes().length);
        byte[] b = java.util.Arrays.copyOf(s.bytes(), cut);
        Statistics.label("outcome").collect(openAndWalk(s, b));
    }

    @Property(tries = 2500)
    void hugeCountsAndLengthsFailCleanly(@ForAll @IntRange(max = 5) int file, @ForAll long seed) {
        Sample s = samples.get(file);
        var random = new Random(seed);
        byte[] b = s.bytes().clone();
        ByteBuffer buffer = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int corruptions = 1 + random.nextInt(2);
        for (int i = 0; i < corruptions; i++) {
            Field f = s.fields().get(random.nextInt(s.fields().size()));
            long value = random.nextInt(4) == 0 ? random.nextLong() : HUGE[random.nextInt(HUGE.length)];
            if (random.nextInt(8) == 0) {
                value = b.length + random.nextInt(64) - 32; // plausible but wrong: near the file size
            }
            if (f.width() == 8) {
                buffer.putLong((int) f.offset(), value);
            } else {
                buffer.putInt((int) f.offset(), (int) value);
            }
        }
        Statistics.label("outcome").collect(openAndWalk(s, b));
    }

    /** Mostly inside the header (where the structure is), sometimes anywhere. */
    private static int position(Random random, Sample s) {
        int header = (int) Math.min(s.bytes().length, s.headerBytes() + 64);
        return random.nextInt(10) < 9 ? random.nextInt(header) : random.nextInt(s.bytes().length);
    }

    /** Opens and touches everything; returns "ok" or "rejected". Any other throwable fails the property. */
    private static String openAndWalk(Sample s, byte[] corrupted) {
        GgufFile f;
        try {
            f = GgufFile.read(s.path(), MemorySegment.ofArray(corrupted));
        } catch (GgufFormatException e) {
            if (e.getMessage() == null || !e.getMessage().startsWith(s.path().getFileName().toString())) {
                throw new AssertionError("message does not name the file: " + e.getMessage(), e);
            }
            return "rejected";
        }
        for (MetadataValue v : f.metadata().asMap().values()) {
            touch(v);
        }
        for (TensorInfo t : f.tensors()) {
            MemorySegment data = f.tensorData(t);
            if (data.byteSize() > 0) {
                data.get(ValueLayout.JAVA_BYTE, 0);
                data.get(ValueLayout.JAVA_BYTE, data.byteSize() - 1);
            }
            t.elementCount();
        }
        ModelSummary.of(f);
        return "ok";
    }

    private static void touch(MetadataValue value) {
        switch (value) {
            case MetadataValue.Str s -> s.text();
            case MetadataValue.Array(GgufArray a) -> {
                if (a.size() > 0) {
                    touch(a.valueAt(0));
                    touch(a.valueAt(a.size() - 1));
                    touch(a.valueAt(a.size() / 2));
                }
                a.toString();
            }
            default -> value.toString();
        }
    }

    /**
     * Finds the count, length and type fields of a valid file by walking it, independently of {@link GgufReader}
     * (which the corruption is aimed at). Walks only the unmodified file, so it trusts what it reads.
     */
    static final class FieldMap {
        private final ByteBuffer b;
        private final List<Field> fields = new ArrayList<>();

        private FieldMap(byte[] bytes) {
            b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        }

        static List<Field> of(byte[] bytes) {
            var m = new FieldMap(bytes);
            m.walk();
            return List.copyOf(m.fields);
        }

        private long u64Field() {
            fields.add(new Field(b.position(), 8));
            return b.getLong();
        }

        private int u32Field() {
            fields.add(new Field(b.position(), 4));
            return b.getInt();
        }

        private void string() {
            long n = u64Field();
            b.position(b.position() + (int) n);
        }

        private void walk() {
            b.position(8);
            long tensors = u64Field();
            long kvs = u64Field();
            for (long i = 0; i < kvs; i++) {
                string();
                value(u32Field());
            }
            for (long i = 0; i < tensors; i++) {
                string();
                int dims = u32Field();
                for (int d = 0; d < dims; d++) {
                    u64Field();
                }
                u32Field();
                u64Field();
            }
        }

        private void value(int type) {
            switch (type) {
                case 8 -> string();
                case 9 -> {
                    int elementType = u32Field();
                    long n = u64Field();
                    // Only the first elements' fields are recorded for long arrays: enough targets, bounded map.
                    for (long i = 0; i < n; i++) {
                        int before = fields.size();
                        value(elementType);
                        if (i > 64 && fields.size() > before) {
                            fields.subList(before, fields.size()).clear();
                        }
                    }
                }
                default -> b.position(b.position() + GgufValueType.byId(type).orElseThrow().sizeBytes());
            }
        }
    }
}
