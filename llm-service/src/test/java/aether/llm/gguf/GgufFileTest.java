package aether.llm.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufFileTest {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path temp;

    /** One value of every type, a nested array, two tensors of different types. */
    static GgufBytes everyValueType(int version) {
        var b = GgufBytes.header(version, 2, 16)
                .key("t.u8", GgufValueType.UINT8).u8(200)
                .key("t.i8", GgufValueType.INT8).u8(-5)
                .key("t.u16", GgufValueType.UINT16).u16(60000)
                .key("t.i16", GgufValueType.INT16).u16(-30000)
                .key("t.u32", GgufValueType.UINT32).u32((int) 4_000_000_000L)
                .key("t.i32", GgufValueType.INT32).u32(-2_000_000_000)
                .key("t.f32", GgufValueType.FLOAT32).f32(1.5f)
                .key("t.bool", GgufValueType.BOOL).u8(1)
                .key("t.string", GgufValueType.STRING).str("héllo")
                .key("t.u64", GgufValueType.UINT64).u64(-1L)
                .key("t.i64", GgufValueType.INT64).u64(-(1L << 40))
                .key("t.f64", GgufValueType.FLOAT64).f64(2.5)
                .key("t.floats", GgufValueType.ARRAY).u32(GgufValueType.FLOAT32.id()).u64(3).f32(1).f32(2).f32(3)
                .key("t.nested", GgufValueType.ARRAY).u32(GgufValueType.ARRAY.id()).u64(2)
                        .u32(GgufValueType.INT16.id()).u64(2).u16(7).u16(-8)
                        .u32(GgufValueType.STRING.id()).u64(1).str("x")
                .key("t.badutf8", GgufValueType.STRING).str(new byte[] {'a', (byte) 0xFF, (byte) 0xFE})
                .key("t.strings", GgufValueType.ARRAY).u32(GgufValueType.STRING.id()).u64(3).str("<unk>").str("").str("ü")
                .tensor("a", GgmlType.F32.id(), 0, 4, 2)
                .tensor("b", GgmlType.Q8_0.id(), 32, 32)
                .pad(32).mark("data");
        for (int i = 0; i < 8; i++) {
            b.f32(i * 0.5f);
        }
        b.u16(Float.floatToFloat16(0.25f));
        for (int i = 0; i < 32; i++) {
            b.u8(i - 16);
        }
        return b;
    }

    @Test
    void shouldReadEveryValueTypeWithItsExactType() {
        GgufFile f = everyValueType(3).read();
        GgufMetadata md = f.metadata();
        assertThat(md.keys()).startsWith("t.u8", "t.i8", "t.u16", "t.i16", "t.u32");
        assertThat(md.require("t.u8")).isEqualTo(new MetadataValue.Int(GgufValueType.UINT8, 200));
        assertThat(md.getInt("t.i8", 0)).isEqualTo(-5);
        assertThat(md.getInt("t.u16", 0)).isEqualTo(60000);
        assertThat(md.getInt("t.i16", 0)).isEqualTo(-30000);
        assertThat(md.getLong("t.u32", 0)).isEqualTo(4_000_000_000L);
        assertThat(md.getInt("t.i32", 0)).isEqualTo(-2_000_000_000);
        assertThat(md.getFloat("t.f32", 0)).isEqualTo(1.5f);
        assertThat(md.require("t.f32")).isInstanceOf(MetadataValue.Float32.class);
        assertThat(md.getBoolean("t.bool", false)).isTrue();
        assertThat(md.getString("t.string", null)).isEqualTo("héllo");
        assertThat(md.require("t.u64").toString()).isEqualTo("18446744073709551615");
        assertThat(md.getLong("t.i64", 0)).isEqualTo(-(1L << 40));
        assertThat(md.getDouble("t.f64", 0)).isEqualTo(2.5);
        assertThat(md.getFloatArray("t.floats", null)).containsExactly(1f, 2f, 3f);
        GgufArray nested = md.requireArray("t.nested");
        assertThat(nested.elementType()).isEqualTo(GgufValueType.ARRAY);
        assertThat(nested.arrayAt(0).toLongArray()).containsExactly(7, -8);
        assertThat(nested.arrayAt(1).strings()).containsExactly("x");
        assertThat(md.getString("t.badutf8", null)).isEqualTo("a\uFFFD\uFFFD");
        assertThat(((MetadataValue.Str) md.require("t.badutf8")).utf8()).containsExactly('a', 0xFF, 0xFE);
        assertThat(md.requireStringArray("t.strings")).containsExactly("<unk>", "", "ü");
        assertThat(md.requireArray("t.strings")).hasToString("[3 strings: \"<unk>\", \"\", \"ü\"]");
    }

    @Test
    void shouldPlaceTensorsAfterTheAlignedHeader() {
        GgufBytes b = everyValueType(3);
        GgufFile f = b.read();
        assertThat(f.dataStart()).isEqualTo(b.at("data"));
        assertThat(f.tensors()).extracting(TensorInfo::name).containsExactly("a", "b");
        TensorInfo a = f.tensor("a").orElseThrow();
        assertThat(a.shape()).containsExactly(4, 2);
        assertThat(a.sizeBytes()).isEqualTo(32);
        assertThat(a.elementCount()).isEqualTo(8);
        assertThat(f.tensorData(a).getAtIndex(F32, 7)).isEqualTo(3.5f);
        TensorInfo q = f.tensor("b").orElseThrow();
        assertThat(q.type()).isEqualTo(GgmlType.Q8_0);
        assertThat(q.sizeBytes()).isEqualTo(34);
        assertThat(f.tensorData("b").get(ValueLayout.JAVA_BYTE, 33)).isEqualTo((byte) 15);
    }

    @Test
    void shouldAcceptVersion2() {
        assertThat(everyValueType(2).read().version()).isEqualTo(2);
    }

    @Test
    void shouldUseTheAlignmentFromMetadata() {
        var b = GgufBytes.header(3, 2, 1).kvU32("general.alignment", 64)
                .tensor("x", GgmlType.F32.id(), 0, 4)
                .tensor("y", GgmlType.F32.id(), 64, 4)
                .pad(64).mark("data").zeros(64 + 16);
        GgufFile f = b.read();
        assertThat(f.alignment()).isEqualTo(64);
        assertThat(f.dataStart()).isEqualTo(b.at("data")).isEqualTo(64 * ((b.at("data") + 63) / 64));
    }

    @Test
    void shouldMapTensorsWithoutCopying() throws IOException {
        try (GgufFile f = GgufFile.open(RealGgufFiles.stories260K())) {
            for (TensorInfo t : f.tensors()) {
                var data = f.tensorData(t);
                assertThat(data.isMapped()).isTrue();
                assertThat(data.address()).isEqualTo(f.contents().address() + f.dataStart() + t.offset());
            }
        }
    }

    @Test
    void shouldReadStories260KAsLlamaWithFiveLayers() throws IOException {
        try (GgufFile f = GgufFile.open(RealGgufFiles.stories260K())) {
            GgufMetadata md = f.metadata();
            assertThat(md.requireString("general.architecture")).isEqualTo("llama");
            assertThat(md.requireInt("llama.block_count")).isEqualTo(5);
            List<String> tokens = md.requireStringArray("tokenizer.ggml.tokens");
            assertThat(tokens).hasSize(512);
            assertThat(tokens.get(1)).isEqualTo("<s>");
            long embedding = md.requireLong("llama.embedding_length");
            TensorInfo embd = f.tensor("token_embd.weight").orElseThrow();
            assertThat(embd.shape()).containsExactly(embedding, tokens.size());
            // Every tensor's bytes come from the file: the total matches the data section minus padding.
            long total = f.tensors().stream().mapToLong(t -> GgufReader.alignUp(t.sizeBytes(), f.alignment())).sum();
            assertThat(f.dataStart() + total).isEqualTo(f.sizeBytes());
        }
    }

    @Test
    void shouldHashTheDataSectionWithSha256() throws Exception {
        Path file = RealGgufFiles.stories260K();
        byte[] all = Files.readAllBytes(file);
        try (GgufFile f = GgufFile.open(file)) {
            long dataBytes = f.tensors().stream().mapToLong(t -> GgufReader.alignUp(t.sizeBytes(), f.alignment())).sum();
            var digest = MessageDigest.getInstance("SHA-256");
            digest.update(all, (int) (all.length - dataBytes), (int) dataBytes);
            assertThat(f.dataSha256()).isEqualTo(HexFormat.of().formatHex(digest.digest()));
        }
    }

    @Test
    void shouldReadVocabFilesWithoutTensorsOrPadding() throws IOException {
        for (Path p : RealGgufFiles.vocabFiles()) {
            try (GgufFile f = GgufFile.open(p)) {
                assertThat(f.tensors()).as(p.toString()).isEmpty();
                assertThat(f.headerBytes()).isEqualTo(f.sizeBytes());
                assertThat(f.dataSection().byteSize()).isZero();
                GgufArray tokens = f.metadata().requireArray("tokenizer.ggml.tokens");
                assertThat(tokens.size()).isGreaterThan(1000);
                long lastLength = tokens.stringLengthAt(tokens.size() - 1);
                assertThat(tokens.stringBytesAt(tokens.size() - 1)).hasSize((int) lastLength);
            }
        }
    }

    @Test
    void shouldRefuseTensorDataAfterClose() throws IOException {
        GgufFile f = GgufFile.open(RealGgufFiles.stories260K());
        var data = f.tensorData("token_embd.weight");
        f.close();
        assertThatThrownBy(() -> data.get(ValueLayout.JAVA_BYTE, 0)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void shouldWriteWhatItReadsForEveryValueType() throws IOException {
        byte[] original = everyValueType(3).bytes();
        GgufFile f = GgufBytes.read(original);
        Path out = temp.resolve("every.gguf");
        GgufWriter.write(out, f.metadata(), GgufWriter.tensorsOf(f), GgufWriter.Options.matching(f));
        // The hand-built file ends right after tensor b (no trailing padding), and the writer reproduces that.
        assertThat(Files.readAllBytes(out)).isEqualTo(original);
    }
}
