package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Dequantizes the K-quant tensors of llama.cpp's golden GGUF variants and compares with gguf-py/llama.cpp's f32
 * output bit for bit, on both the scalar and the vector path. Driven by index.json: every dequant entry of a type
 * these codecs own is checked.
 */
class KQuantDequantizeGoldenTest {

    @TestFactory
    List<DynamicTest> shouldDequantizeEveryGoldenKQuantTensorBitExactly() {
        KQuantGolden golden = KQuantGolden.load();
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode variant : golden.index.get("variants")) {
            String file = variant.get("file").asText();
            for (JsonNode entry : variant.get("dequant")) {
                String type = entry.get("ggml_type").asText();
                BlockCodec scalar = KQuantGolden.CODECS.get(type);
                if (scalar == null) {
                    continue; // legacy, IQ and float types belong to other codecs
                }
                String name = file + " " + entry.get("tensor").asText() + " (" + type + ")";
                tests.add(DynamicTest.dynamicTest(name, () -> {
                    int count = Math.toIntExact(KQuantGolden.elements(entry));
                    long offset = entry.get("data_offset").asLong();
                    int nBytes = entry.get("n_bytes").asInt();
                    assertThat((long) nBytes).isEqualTo(scalar.type().bytesFor(count));
                    MemorySegment raw = MemorySegment.ofArray(golden.bytes(file, offset, nBytes));
                    float[] expected = golden.floatFile(entry.get("file").asText());
                    assertThat(expected).hasSize(count);

                    assertBitExact(name + " scalar", expected, dequantize(scalar, raw, count));
                    BlockCodec vector = KQuantGolden.VECTOR_CODECS.get(type);
                    if (vector != null) {
                        assertBitExact(name + " vector", expected, dequantize(vector, raw, count));
                    }
                }));
            }
        }
        return tests;
    }

    @Test
    void shouldFindGoldenDataForEveryKQuantTypeWithADequantizer() {
        KQuantGolden golden = KQuantGolden.load();
        Set<String> seen = new TreeSet<>();
        for (JsonNode variant : golden.index.get("variants")) {
            for (JsonNode entry : variant.get("dequant")) {
                seen.add(entry.get("ggml_type").asText());
            }
        }
        assertThat(seen).containsAll(KQuantGolden.CODECS.keySet());
    }

    @Test
    void shouldDequantizeAtAnOffsetIntoTheMiddleOfAnArray() {
        KQuantGolden golden = KQuantGolden.load();
        for (JsonNode variant : golden.index.get("variants")) {
            for (JsonNode entry : variant.get("dequant")) {
                BlockCodec codec = KQuantGolden.CODECS.get(entry.get("ggml_type").asText());
                if (codec == null) {
                    continue;
                }
                // the third block only, written after 7 sentinel floats
                int blockBytes = codec.type().blockBytes();
                MemorySegment raw = MemorySegment.ofArray(golden.bytes(variant.get("file").asText(),
                        entry.get("data_offset").asLong(), 3 * blockBytes));
                float[] expected = golden.floats(entry.get("file").asText(), 2L * 256 * Float.BYTES, 256);
                for (BlockCodec c : List.of(codec, KQuantGolden.VECTOR_CODECS.getOrDefault(codec.type().name(), codec))) {
                    float[] out = new float[7 + 256 + 5];
                    java.util.Arrays.fill(out, -7.5f);
                    c.dequantize(raw, 2L * blockBytes, out, 7, 256);
                    assertBitExact(codec.type() + " at offset", expected, java.util.Arrays.copyOfRange(out, 7, 263));
                    assertThat(out[6]).isEqualTo(-7.5f);
                    assertThat(out[263]).isEqualTo(-7.5f);
                }
            }
        }
    }

    static float[] dequantize(BlockCodec codec, MemorySegment raw, int count) {
        float[] out = new float[count];
        codec.dequantize(raw, 0, out, 0, count);
        return out;
    }

    static void assertBitExact(String what, float[] expected, float[] actual) {
        assertThat(actual).hasSameSizeAs(expected);
        for (int i = 0; i < expected.length; i++) {
            int e = Float.floatToRawIntBits(expected[i]);
            int a = Float.floatToRawIntBits(actual[i]);
            if (e != a) {
                throw new AssertionError("%s: element %d (block %d, index %d in block) is %s (0x%08x), expected %s (0x%08x)"
                        .formatted(what, i, i / 256, i % 256, actual[i], a, expected[i], e));
            }
        }
    }

}
