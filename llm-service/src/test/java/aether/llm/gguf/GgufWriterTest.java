package aether.llm.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufWriterTest {

    @TempDir
    Path temp;

    private static GgufWriter.Tensor f32(String name, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return new GgufWriter.Tensor(name, GgmlType.F32, shape, TensorSource.of(MemorySegment.ofArray(new float[(int) n])));
    }

    @Test
    void shouldWriteArraysBuiltInMemoryAndReadThemBack() throws IOException {
        GgufArray nested = GgufArray.ofArrays(List.of(GgufArray.ofInt32(1, -2), GgufArray.ofStrings(List.of("ä", "b"))));
        GgufMetadata md = GgufMetadata.builder()
                .putArray("strings", GgufArray.ofStrings(List.of("<s>", "", "multi\nline")))
                .putArray("f32", GgufArray.ofFloat32(1.5f, Float.NaN, -0f))
                .putArray("f64", GgufArray.ofFloat64(Math.PI))
                .putArray("bools", GgufArray.ofBools(true, false))
                .putArray("u8", GgufArray.ofIntegers(GgufValueType.UINT8, 0, 255))
                .putArray("u64", GgufArray.ofIntegers(GgufValueType.UINT64, -1L))
                .putArray("nested", nested)
                .putBool("flag", true)
                .put("i16", new MetadataValue.Int(GgufValueType.INT16, -7))
                .build();
        Path file = temp.resolve("arrays.gguf");
        GgufWriter.write(file, md, List.of());
        try (GgufFile f = GgufFile.open(file)) {
            assertThat(f.metadata().asMap()).containsExactlyEntriesOf(md.asMap());
            assertThat(f.metadata().requireStringArray("strings")).containsExactly("<s>", "", "multi\nline");
            assertThat(f.metadata().requireFloatArray("f32")).containsExactly(1.5f, Float.NaN, -0f);
            assertThat(f.metadata().requireArray("f64").doubleAt(0)).isEqualTo(Math.PI);
            assertThat(f.metadata().requireArray("bools").booleanAt(0)).isTrue();
            assertThat(f.metadata().requireIntArray("u8")).containsExactly(0, 255);
            assertThat(f.metadata().requireArray("u64").doubleAt(0)).isEqualTo(0x1p64);
            GgufArray readNested = f.metadata().requireArray("nested");
            assertThat(readNested.arrayAt(0).toIntArray()).containsExactly(1, -2);
            assertThat(readNested.arrayAt(1).strings()).containsExactly("ä", "b");
            assertThat(f.metadata().require("i16")).isEqualTo(new MetadataValue.Int(GgufValueType.INT16, -7));
            // llama.cpp pads the header of a tensor-less file too; DEFAULT does the same.
            assertThat(f.sizeBytes() % 32).isZero();
        }
    }

    @Test
    void shouldStreamACallbackSourceInConsecutiveWindows() throws IOException {
        long n = 3 * (4L << 20) / 4 + 5; // spans several 4 MiB chunks and ends in a partial one
        var random = new Random(42);
        float[] expected = new float[(int) n];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = random.nextFloat();
        }
        MemorySegment source = MemorySegment.ofArray(expected);
        long[] next = {0};
        TensorSource callback = (offset, window) -> {
            assertThat(offset).isEqualTo(next[0]);
            next[0] += window.byteSize();
            MemorySegment.copy(source, offset, window, 0, window.byteSize());
        };
        Path file = temp.resolve("stream.gguf");
        GgufWriter.write(file, GgufMetadata.builder().build(), List.of(
                f32("first", 3),
                new GgufWriter.Tensor("big", GgmlType.F32, new long[] {n}, callback)));
        assertThat(next[0]).isEqualTo(n * 4);
        try (GgufFile f = GgufFile.open(file)) {
            assertThat(f.tensor("big").orElseThrow().offset()).isEqualTo(32);
            // Compared with mismatch: AssertJ's diff of two 3M-element arrays is quadratic.
            assertThat(f.tensorData("big").mismatch(source)).as("first differing byte").isEqualTo(-1L);
            assertThat(f.sizeBytes() - f.dataStart()).isEqualTo(32 + GgufReader.alignUp(n * 4, 32));
        }
    }

    @Test
    void shouldWriteVersion2WhenAsked() throws IOException {
        Path file = temp.resolve("v2.gguf");
        GgufWriter.write(file, GgufMetadata.builder().putString("general.architecture", "x").build(), List.of(f32("t", 8)),
                new GgufWriter.Options(2, true, false));
        try (GgufFile f = GgufFile.open(file)) {
            assertThat(f.version()).isEqualTo(2);
            assertThat(f.sizeBytes()).isEqualTo(f.dataStart() + 32);
        }
        assertThat(Files.readAllBytes(file)[4]).isEqualTo((byte) 2);
    }

    @Test
    void shouldRejectWhatTheReaderWouldReject() {
        GgufMetadata none = GgufMetadata.builder().build();
        assertThatThrownBy(() -> GgufWriter.write(temp.resolve("a"), none, List.of(f32("w", 4), f32("w", 4))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("duplicate tensor name 'w'");
        assertThatThrownBy(() -> GgufWriter.write(temp.resolve("b"), none, List.of(f32("w", 1, 1, 1, 1, 1))))
                .hasMessageContaining("5 dimensions, at most 4");
        assertThatThrownBy(() -> GgufWriter.write(temp.resolve("c"), none, List.of(f32("x".repeat(64), 4))))
                .hasMessageContaining("name of 64 bytes, at most 63");
        GgufMetadata badAlignment = GgufMetadata.builder().putUInt32("general.alignment", 48).build();
        assertThatThrownBy(() -> GgufWriter.write(temp.resolve("d"), badAlignment, List.of()))
                .hasMessageContaining("general.alignment must be an integer power of two", "48");
        assertThatThrownBy(() -> new GgufWriter.Tensor("q", GgmlType.Q8_0, new long[] {32}, TensorSource.of(MemorySegment.ofArray(new byte[32]))))
                .hasMessageContaining("tensor 'q': Q8_0 [32] needs 34 bytes, the segment has 32");
        assertThatThrownBy(() -> GgufWriter.write(temp.resolve("e"), none,
                List.of(new GgufWriter.Tensor("q", GgmlType.Q4_K, new long[] {100}, (o, w) -> {}))))
                .hasMessageContaining("not a multiple of the block size 256");
        assertThatThrownBy(() -> GgufMetadata.builder().putUInt32("k", 1).putUInt32("k", 2))
                .hasMessageContaining("duplicate metadata key 'k'");
        assertThatThrownBy(() -> GgufMetadata.builder().putUInt32("k", -1))
                .hasMessageContaining("UINT32 value -1 is outside [0, 4294967295]");
    }
}
