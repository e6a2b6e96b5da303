package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Every {@code dequant} entry of golden/quant/index.json whose type this branch implements: the tensor's raw bytes,
 * read from the variant GGUF at {@code data_offset}, must decode to the golden {@code .f32.bin} bit for bit.
 */
class IqGoldenDequantTest {

    @TestFactory
    Stream<DynamicTest> shouldMatchLlamaCppDequantizationBitForBit() throws IOException {
        Path index = SharedData.require("golden/quant/index.json");
        JsonNode root = new ObjectMapper().readTree(index.toFile());
        Path dir = index.getParent();
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode variant : root.path("variants")) {
            Path gguf = dir.resolve(variant.path("file").asText());
            for (JsonNode entry : variant.path("dequant")) {
                GgmlType type = GgmlType.byName(entry.path("ggml_type").asText()).orElseThrow();
                BlockCodec codec = IqCodecs.BY_TYPE.get(type);
                if (codec == null) {
                    continue; // legacy / K-quant / float types: other codecs' tests
                }
                String name = variant.path("file").asText() + " " + entry.path("tensor").asText() + " (" + type + ")";
                tests.add(DynamicTest.dynamicTest(name, () -> check(codec, gguf, dir.resolve(entry.path("file").asText()),
                        entry.path("data_offset").asLong(), entry.path("n_bytes").asLong())));
            }
        }
        assertThat(tests).as("golden entries of IQ4_NL and IQ4_XS").hasSizeGreaterThanOrEqualTo(4);
        return tests.stream();
    }

    private static void check(BlockCodec codec, Path gguf, Path golden, long offset, long nBytes) throws IOException {
        float[] expected = IqCodecs.floats(Files.readAllBytes(golden));
        GgmlType type = codec.type();
        assertThat(type.bytesFor(expected.length)).as("n_bytes of %s", golden.getFileName()).isEqualTo(nBytes);
        try (FileChannel ch = FileChannel.open(gguf, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            MemorySegment raw = ch.map(FileChannel.MapMode.READ_ONLY, offset, nBytes, arena);
            float[] actual = new float[expected.length];
            codec.dequantize(raw, 0, actual, 0, actual.length);
            int diff = IqCodecs.firstBitDifference(expected, actual);
            assertThat(diff).as("first differing element %d", diff).isEqualTo(-1);
        }
    }
}
