package aether.llm.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Hand-built broken files, one per kind of damage: each must fail with the offset and a message saying why. */
class GgufFormatErrorsTest {

    @TempDir
    Path temp;

    private static GgufFormatException failure(GgufBytes b) {
        return failure(b.bytes());
    }

    private static GgufFormatException failure(byte[] bytes) {
        return catchThrowableOfType(GgufFormatException.class, () -> GgufBytes.read(bytes));
    }

    @Test
    void shouldRejectTruncationAtEveryByte() {
        byte[] full = GgufFileTest.everyValueType(3).bytes();
        for (int cut = 0; cut < full.length; cut++) {
            GgufFormatException e = failure(Arrays.copyOf(full, cut));
            assertThat(e).as("cut at %d", cut).isNotNull();
            assertThat(e.offset()).as("cut at %d: %s", cut, e.getMessage()).isBetween(-1L, (long) cut);
            assertThat(e.getMessage()).startsWith("hand-built.gguf");
        }
    }

    @Test
    void shouldNameTheFileAndOffsetOfATruncatedCount() {
        byte[] bytes = Arrays.copyOf(GgufBytes.header(3, 0, 0).bytes(), 4 + 4 + 8 + 3);
        GgufFormatException e = failure(bytes);
        assertThat(e.offset()).isEqualTo(16);
        assertThat(e.field()).isEqualTo("header.metadata_kv_count");
        assertThat(e).hasMessage("hand-built.gguf @ 16: header.metadata_kv_count: needs 8 bytes, only 3 remain (file truncated?)");
    }

    @Test
    void shouldRejectWrongMagic() {
        byte[] bytes = GgufBytes.header(3, 0, 0).bytes();
        bytes[0] = 'G';
        bytes[1] = 'G';
        bytes[2] = 'M';
        bytes[3] = 'L';
        GgufFormatException e = failure(bytes);
        assertThat(e.offset()).isZero();
        assertThat(e.getMessage()).contains("expected \"GGUF\"", "found \"GGML\" (47 47 4d 4c)");
    }

    @Test
    void shouldRejectUnsupportedVersions() {
        GgufFormatException v1 = failure(GgufBytes.header(1, 0, 0));
        assertThat(v1.offset()).isEqualTo(4);
        assertThat(v1.getMessage()).contains("unsupported GGUF version 1, expected 2 or 3");
        assertThat(failure(GgufBytes.header(4, 0, 0)).getMessage()).contains("unsupported GGUF version 4");
        assertThat(failure(GgufBytes.header(Integer.reverseBytes(3), 0, 0)).getMessage()).contains("big-endian");
    }

    @Test
    void shouldRejectAnAbsurdStringLengthBeforeAllocating() {
        var b = GgufBytes.header(3, 0, 1).mark("len").u64(Long.MAX_VALUE).raw("some.key".getBytes());
        GgufFormatException e = failure(b);
        assertThat(e.offset()).isEqualTo(b.at("len"));
        assertThat(e.getMessage()).contains("metadata key #0", "string of 9223372036854775807 bytes, only 8 remain");
        var value = GgufBytes.header(3, 0, 1).key("k", GgufValueType.STRING).mark("len").u64(-1L);
        assertThat(failure(value).offset()).isEqualTo(value.at("len"));
        assertThat(failure(value).getMessage()).contains("string of 18446744073709551615 bytes");
    }

    @Test
    void shouldRejectAbsurdTensorAndMetadataCounts() {
        GgufFormatException tensors = failure(GgufBytes.header(3, 1_000_000_000_000L, 0).zeros(100));
        assertThat(tensors.offset()).isEqualTo(8);
        assertThat(tensors.getMessage()).contains("1000000000000 tensor infos need at least 24,000,000,000,000 bytes, only 100 remain");
        GgufFormatException kvs = failure(GgufBytes.header(3, 0, -1L).zeros(100));
        assertThat(kvs.offset()).isEqualTo(16);
        assertThat(kvs.getMessage()).contains("18446744073709551615 metadata entries need at least 2^63 bytes");
    }

    @Test
    void shouldRejectAnAbsurdArrayCountBeforeAllocating() {
        var b = GgufBytes.header(3, 0, 1).key("big", GgufValueType.ARRAY).u32(GgufValueType.STRING.id())
                .mark("count").u64(1_000_000_000L).str("only one");
        GgufFormatException e = failure(b);
        assertThat(e.offset()).isEqualTo(b.at("count"));
        assertThat(e.getMessage()).contains("metadata 'big'", "array of 1000000000 STRING needs at least 8,000,000,000 bytes, only 16 remain");
    }

    @Test
    void shouldRejectTensorDataPastTheEndOfTheFile() {
        var b = GgufBytes.header(3, 1, 0).mark("info").tensor("blk.0.attn_q.weight", GgmlType.F32.id(), 0, 128, 128)
                .pad(32).mark("data").zeros(5_000);
        GgufFormatException e = failure(b);
        assertThat(e.offset()).isEqualTo(b.at("info"));
        assertThat(e).hasMessage("hand-built.gguf @ %d: tensor 'blk.0.attn_q.weight': data needs 65,536 bytes at offset %,d, only 5,000 remain"
                .formatted(b.at("info"), b.at("data")));
    }

    @Test
    void shouldRejectATensorOffsetBeyondTheFile() {
        var b = GgufBytes.header(3, 1, 0).tensor("t", GgmlType.F32.id(), 1L << 40, 8).pad(32).zeros(32);
        assertThat(failure(b).getMessage()).contains("tensor 't': data needs 32 bytes at offset", "only 0 remain");
    }

    @Test
    void shouldRejectOverlappingTensors() {
        var b = GgufBytes.header(3, 2, 0)
                .tensor("first", GgmlType.F32.id(), 0, 16)
                .mark("second").tensor("second", GgmlType.F32.id(), 32, 16)
                .pad(32).zeros(128);
        GgufFormatException e = failure(b);
        assertThat(e.offset()).isEqualTo(b.at("second"));
        assertThat(e.getMessage()).contains("tensor 'second'", "data [32, 96) overlaps tensor 'first' at [0, 64)");
    }

    @Test
    void shouldRejectOverlapHiddenBehindAnEmptyTensor() {
        var b = GgufBytes.header(3, 3, 0)
                .tensor("big", GgmlType.F32.id(), 0, 32)
                .tensor("empty", GgmlType.F32.id(), 32, 0)
                .tensor("late", GgmlType.F32.id(), 64, 16)
                .pad(32).zeros(256);
        assertThat(failure(b).getMessage()).contains("tensor 'late'", "overlaps tensor 'big'");
    }

    @Test
    void shouldRejectMisalignedTensors() {
        var b = GgufBytes.header(3, 1, 0).mark("info").tensor("t", GgmlType.F32.id(), 4, 8).pad(32).zeros(64);
        GgufFormatException e = failure(b);
        assertThat(e.offset()).isEqualTo(b.at("info"));
        assertThat(e.getMessage()).contains("data offset 4 is not a multiple of the alignment 32");
    }

    @Test
    void shouldRejectUnknownTensorTypes() {
        for (int id : new int[] {4, 31, 99, -1}) {
            var b = GgufBytes.header(3, 1, 0).str("t").u32(1).u64(32).mark("type").u32(id).u64(0).pad(32).zeros(256);
            GgufFormatException e = failure(b);
            assertThat(e.offset()).isEqualTo(b.at("type"));
            assertThat(e.getMessage()).contains("tensor 't'", "unknown ggml type id " + Integer.toUnsignedString(id));
        }
    }

    @Test
    void shouldRejectRowsThatAreNotWholeBlocks() {
        var b = GgufBytes.header(3, 1, 0).tensor("q", GgmlType.Q4_0.id(), 0, 33, 2).pad(32).zeros(256);
        assertThat(failure(b).getMessage()).contains("tensor 'q'", "ne[0]=33 is not a multiple of the block size 32");
    }

    @Test
    void shouldRejectTooManyDimensionsAndNegativeOnes() {
        var five = GgufBytes.header(3, 1, 0).str("t").mark("dims").u32(5);
        assertThat(failure(five.zeros(64)).getMessage()).contains("n_dims is 5, expected 0..4");
        assertThat(failure(five).offset()).isEqualTo(five.at("dims"));
        var negative = GgufBytes.header(3, 1, 0).tensor("t", GgmlType.F32.id(), 0, 4, -3).pad(32).zeros(64);
        assertThat(failure(negative).getMessage()).contains("ne[1] = -3 is negative");
        var overflow = GgufBytes.header(3, 1, 0).tensor("t", GgmlType.Q4_0.id(), 0, 1L << 40, 1L << 40).pad(32).zeros(64);
        assertThat(failure(overflow).getMessage()).contains("overflows");
    }

    @Test
    void shouldRejectDuplicateKeysAndTensorNames() {
        var keys = GgufBytes.header(3, 0, 2).kvU32("a.b", 1).mark("second").kvU32("a.b", 2);
        GgufFormatException e = failure(keys);
        assertThat(e.offset()).isEqualTo(keys.at("second"));
        assertThat(e.getMessage()).contains("metadata 'a.b'", "duplicate key (first at offset 24)");
        var names = GgufBytes.header(3, 2, 0).tensor("w", 0, 0, 8).mark("second").tensor("w", 0, 32, 8).pad(32).zeros(64);
        assertThat(failure(names).getMessage()).contains("tensor #1 'w'", "duplicate tensor name");
        assertThat(failure(names).offset()).isEqualTo(names.at("second"));
    }

    @Test
    void shouldRejectInvalidUtf8InKeysAndTensorNamesButKeepItInValues() {
        var key = GgufBytes.header(3, 0, 1).mark("key").str(new byte[] {'a', (byte) 0xC3}).u32(4).u32(1);
        GgufFormatException e = failure(key);
        assertThat(e.offset()).isEqualTo(key.at("key"));
        assertThat(e.getMessage()).contains("metadata key #0", "name is not valid UTF-8");
        var name = GgufBytes.header(3, 1, 0).str(new byte[] {(byte) 0xFF}).u32(0).u32(0).u64(0).pad(32).zeros(32);
        assertThat(failure(name).getMessage()).contains("tensor #0 name", "not valid UTF-8");
        var value = GgufBytes.header(3, 0, 1).key("v", GgufValueType.STRING).str(new byte[] {(byte) 0xC3});
        assertThat(value.read().metadata().requireString("v")).isEqualTo("\uFFFD");
    }

    @Test
    void shouldRejectBadAlignment() {
        var odd = GgufBytes.header(3, 0, 1).mark("kv").kvU32("general.alignment", 24);
        GgufFormatException e = failure(odd);
        assertThat(e.offset()).isEqualTo(odd.at("kv"));
        assertThat(e.getMessage()).contains("general.alignment", "power of two", "found 24");
        assertThat(failure(GgufBytes.header(3, 0, 1).kvU32("general.alignment", 0)).getMessage()).contains("found 0");
        assertThat(failure(GgufBytes.header(3, 0, 1).kvString("general.alignment", "32")).getMessage())
                .contains("expected an integer, found STRING");
    }

    @Test
    void shouldRejectUnknownValueTypesBadBoolsAndDeepNesting() {
        var type = GgufBytes.header(3, 0, 1).str("k").mark("type").u32(13).u8(0);
        assertThat(failure(type).offset()).isEqualTo(type.at("type"));
        assertThat(failure(type).getMessage()).contains("unknown value type 13, expected 0..12");
        var bool = GgufBytes.header(3, 0, 1).key("k", GgufValueType.BOOL).mark("v").u8(2);
        assertThat(failure(bool).offset()).isEqualTo(bool.at("v"));
        assertThat(failure(bool).getMessage()).contains("a BOOL must be 0 or 1, found 2");
        var deep = GgufBytes.header(3, 0, 1).key("deep", GgufValueType.ARRAY);
        for (int i = 0; i < 1000; i++) {
            deep.u32(GgufValueType.ARRAY.id()).u64(1);
        }
        assertThat(failure(deep).getMessage()).contains("nested deeper than 16 levels");
    }

    @Test
    void shouldRejectAFileShorterThanTheMagic() {
        assertThat(failure(new byte[] {'G', 'G'}).getMessage()).contains("file has 2 bytes");
        assertThat(failure(new byte[0]).offset()).isZero();
    }

    @Test
    void shouldReportTheFilePathWhenOpeningFromDisk() throws IOException {
        Path broken = temp.resolve("broken.gguf");
        Files.write(broken, GgufBytes.header(3, 5, 0).bytes());
        assertThatThrownBy(() -> GgufFile.open(broken))
                .isInstanceOf(GgufFormatException.class)
                .hasMessageStartingWith("broken.gguf @ 8: header.tensor_count")
                .satisfies(e -> assertThat(((GgufFormatException) e).file()).isEqualTo(broken));
    }

    @Test
    void shouldNameKeyAndTypeWhenATypedAccessorMismatches() {
        GgufMetadata md = GgufBytes.header(3, 0, 3).kvString("s", "text").kvU32("big", (int) 3_000_000_000L)
                .kvU32("n", 7).read().metadata();
        assertThatThrownBy(() -> md.getInt("s", 1)).isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("metadata 's': expected an integer, found STRING");
        assertThatThrownBy(() -> md.requireInt("big")).hasMessageContaining("fits an int, found UINT32 3,000,000,000");
        assertThatThrownBy(() -> md.requireString("missing")).hasMessageContaining("metadata 'missing': required key is missing");
        assertThatThrownBy(() -> md.requireStringArray("n")).hasMessageContaining("expected an ARRAY, found UINT32");
        assertThat(md.getInt("missing", 42)).isEqualTo(42);
        assertThat(md.getLong("big", 0)).isEqualTo(3_000_000_000L);
        assertThat(md.getDouble("n", 0)).isEqualTo(7.0);
    }
}
