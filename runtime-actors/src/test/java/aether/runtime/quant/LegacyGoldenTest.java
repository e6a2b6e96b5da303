package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * llama.cpp goldens from {@code shared/golden/quant/index.json}: every dequantized tensor of a type this codec set owns
 * must match gguf-py/llama.cpp bit for bit (scalar and vector paths), and the reference quantizers must reproduce
 * llama-quantize's bytes exactly, for both chosen tensors. Cases come from the index, so added variants are covered.
 */
class LegacyGoldenTest {

    /** The types whose codecs live here, with their scalar and vector implementations. */
    private static final Map<GgmlType, List<BlockCodec>> OWNED = Map.of(
            GgmlType.F16, List.of(F16Codec.INSTANCE),
            GgmlType.BF16, List.of(BF16Codec.SCALAR, BF16Codec.VECTOR),
            GgmlType.Q4_0, List.of(Q4_0Codec.SCALAR, Q4_0Codec.VECTOR),
            GgmlType.Q4_1, List.of(Q4_1Codec.SCALAR, Q4_1Codec.VECTOR),
            GgmlType.Q5_0, List.of(Q5_0Codec.SCALAR, Q5_0Codec.VECTOR),
            GgmlType.Q5_1, List.of(Q5_1Codec.SCALAR, Q5_1Codec.VECTOR),
            GgmlType.Q8_0, List.of(Q8_0Codec.SCALAR, Q8_0Codec.VECTOR),
            GgmlType.Q8_1, List.of(Q8_1Codec.INSTANCE),
            GgmlType.F32, List.of(F32Codec.INSTANCE));

    private static final ObjectMapper JSON = new ObjectMapper();

    @TestFactory
    Stream<DynamicTest> shouldDequantizeEveryGoldenTensorBitExactly() throws IOException {
        Path index = SharedData.require("golden/quant/index.json");
        Path root = index.getParent();
        JsonNode variants = JSON.readTree(index.toFile()).get("variants");
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode variant : variants) {
            Path file = root.resolve(variant.get("file").asText());
            for (JsonNode entry : variant.get("dequant")) {
                GgmlType type = typeOf(entry.get("ggml_type").asText());
                List<BlockCodec> codecs = OWNED.get(type);
                if (codecs == null) {
                    continue;   // another codec set's type (K-quants, IQ, ...): tested beside those codecs
                }
                for (BlockCodec codec : codecs) {
                    String name = "%s %s via %s".formatted(file.getFileName(), entry.get("tensor").asText(), label(codec));
                    tests.add(DynamicTest.dynamicTest(name, () -> checkDequant(codec, file, entry, root)));
                }
            }
        }
        assertThat(tests).as("no golden case of an owned type in %s", index).isNotEmpty();
        return tests.stream();
    }

    private static void checkDequant(BlockCodec codec, Path file, JsonNode entry, Path root) throws IOException {
        long offset = entry.get("data_offset").asLong();
        int nBytes = entry.get("n_bytes").asInt();
        long elements = elements(entry.get("ne"));
        assertThat(codec.type().bytesFor(elements)).as("n_bytes for ne").isEqualTo(nBytes);
        // Off-heap at an odd address, like a mapped tensor that is not 4-byte aligned (BF16's vector path is native-only).
        Arena arena = Arena.ofAuto();
        MemorySegment raw = arena.allocate(nBytes + 1L).asSlice(1);
        raw.copyFrom(MemorySegment.ofArray(readAt(file, offset, nBytes)));
        float[] expected = readFloats(root.resolve(entry.get("file").asText()));
        assertThat(expected).hasSize((int) elements);

        float[] actual = new float[(int) elements];
        codec.dequantize(raw, 0, actual, 0, (int) elements);
        assertBitsEqual(actual, expected, codec.type() + " " + entry.get("tensor").asText());

        // Row by row at an odd destination index, the way a matmul tile would ask for it.
        int rowLength = (int) entry.get("ne").get(0).asLong();
        long rowBytes = codec.type().bytesFor(rowLength);
        float[] row = new float[rowLength + 3];
        for (int r = 0; r < elements / rowLength; r++) {
            codec.dequantize(raw, r * rowBytes, row, 3, rowLength);
            assertBitsEqual(Arrays.copyOfRange(row, 3, rowLength + 3),
                    Arrays.copyOfRange(expected, r * rowLength, (r + 1) * rowLength), "row " + r);
        }
    }

    @TestFactory
    Stream<DynamicTest> shouldQuantizeAttnKLikeTheReferenceFiles() throws IOException {
        Path index = SharedData.require("golden/quant/index.json");
        Path root = index.getParent();
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode ref : JSON.readTree(index.toFile()).get("reference_quantizer")) {
            GgmlType type = typeOf(ref.get("ggml_type").asText());
            BlockCodec codec = BlockCodecs.find(type).orElse(null);
            if (codec == null || !OWNED.containsKey(type)) {
                continue;
            }
            tests.add(DynamicTest.dynamicTest(ref.get("tensor").asText() + " " + type, () -> {
                float[] source = readFloats(root.resolve(ref.get("source_f32_file").asText()));
                byte[] expected = Files.readAllBytes(root.resolve(ref.get("quantized_file").asText()));
                assertThat(source).hasSize((int) elements(ref.get("ne")));
                assertQuantizesTo(codec, source, expected, ref.get("tensor").asText());
            }));
        }
        assertThat(tests).isNotEmpty();
        return tests.stream();
    }

    /**
     * Every chosen tensor of every variant whose quantizer lives here (incl. F16/BF16 narrowing): quantize the F32
     * model's rows and compare with the variant's bytes at {@code data_offset}.
     */
    @TestFactory
    Stream<DynamicTest> shouldQuantizeEveryChosenTensorLikeLlamaQuantize() throws IOException {
        Path index = SharedData.require("golden/quant/index.json");
        Path root = index.getParent();
        JsonNode doc = JSON.readTree(index.toFile());
        Path sourceFile = root.resolve(doc.get("source").get("file").asText());
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode variant : doc.get("variants")) {
            Path file = root.resolve(variant.get("file").asText());
            for (JsonNode entry : variant.get("dequant")) {
                GgmlType type = typeOf(entry.get("ggml_type").asText());
                if (!OWNED.containsKey(type)) {
                    continue;
                }
                String tensor = entry.get("tensor").asText();
                tests.add(DynamicTest.dynamicTest(file.getFileName() + " " + tensor, () -> {
                    JsonNode src = sourceTensor(doc, tensor);
                    assertThat(src.get("ggml_type").asText()).isEqualTo("F32");
                    long elements = elements(src.get("ne"));
                    assertThat(elements(entry.get("ne"))).isEqualTo(elements);
                    float[] source = toFloats(readAt(sourceFile, src.get("data_offset").asLong(), (int) (elements * 4)));
                    byte[] expected = readAt(file, entry.get("data_offset").asLong(), entry.get("n_bytes").asInt());
                    assertQuantizesTo(BlockCodecs.require(type), source, expected, file.getFileName() + " " + tensor);
                }));
            }
        }
        assertThat(tests).isNotEmpty();
        return tests.stream();
    }

    /**
     * llama.cpp ships no Q8_1 tensors (it is an activation format), but {@code quantize_row_q8_1_ref} computes d and qs
     * exactly as {@code quantize_row_q8_0_ref} does; so Q8_1 blocks must carry the Q8_0 golden's d and qs, plus
     * {@code s = fp16(sum(qs) * d)} with d the unrounded f32 scale.
     */
    @TestFactory
    Stream<DynamicTest> shouldQuantizeQ8_1WithTheQ8_0GoldenScalesAndQuants() throws IOException {
        Path index = SharedData.require("golden/quant/index.json");
        Path root = index.getParent();
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode ref : JSON.readTree(index.toFile()).get("reference_quantizer")) {
            if (!ref.get("ggml_type").asText().equalsIgnoreCase("Q8_0")) {
                continue;
            }
            tests.add(DynamicTest.dynamicTest(ref.get("tensor").asText(), () -> {
                float[] source = readFloats(root.resolve(ref.get("source_f32_file").asText()));
                MemorySegment q8_0 = MemorySegment.ofArray(Files.readAllBytes(root.resolve(ref.get("quantized_file").asText())));
                MemorySegment q8_1 = MemorySegment.ofArray(new byte[(int) GgmlType.Q8_1.bytesFor(source.length)]);
                Q8_1Codec.INSTANCE.quantize(source, 0, source.length, q8_1, 0);
                for (int b = 0; b < source.length / 32; b++) {
                    long o0 = (long) b * Q8_0Codec.BLOCK_BYTES;
                    long o1 = (long) b * Q8_1Codec.BLOCK_BYTES;
                    assertThat(q8_1.get(LittleEndian.SHORT, o1 + Q8_1Codec.D_OFFSET)).as("d of block %d", b)
                            .isEqualTo(q8_0.get(LittleEndian.SHORT, o0 + Q8_0Codec.D_OFFSET));
                    float amax = 0;
                    int sum = 0;
                    for (int j = 0; j < 32; j++) {
                        byte q = q8_0.get(LittleEndian.BYTE, o0 + Q8_0Codec.QS_OFFSET + j);
                        assertThat(q8_1.get(LittleEndian.BYTE, o1 + Q8_1Codec.QS_OFFSET + j)).as("qs[%d] of block %d", j, b)
                                .isEqualTo(q);
                        sum += q;
                        amax = Math.max(amax, Math.abs(source[b * 32 + j]));
                    }
                    float d = amax / 127;
                    assertThat(q8_1.get(LittleEndian.SHORT, o1 + Q8_1Codec.S_OFFSET)).as("s of block %d", b)
                            .isEqualTo(Float.floatToFloat16(sum * d));
                }
            }));
        }
        assertThat(tests).isNotEmpty();
        return tests.stream();
    }

    private static void assertQuantizesTo(BlockCodec codec, float[] source, byte[] expected, String what) {
        assertThat(codec.canQuantize()).isTrue();
        GgmlType type = codec.type();
        assertThat(type.bytesFor(source.length)).isEqualTo(expected.length);
        // Quantize into a larger buffer at an odd offset: the codec must write exactly its bytes, unaligned.
        byte[] buffer = new byte[expected.length + 5];
        Arrays.fill(buffer, (byte) 0x5A);
        codec.quantize(source, 0, source.length, MemorySegment.ofArray(buffer), 3);
        byte[] actual = Arrays.copyOfRange(buffer, 3, 3 + expected.length);
        if (!Arrays.equals(actual, expected)) {
            int at = Arrays.mismatch(actual, expected);
            int block = at / type.blockBytes();
            fail("%s %s: first differing byte %d (block %d, byte %d of the block): got 0x%02x, llama.cpp wrote 0x%02x; source %s"
                    .formatted(type, what, at, block, at % type.blockBytes(), actual[at], expected[at],
                            Arrays.toString(Arrays.copyOfRange(source, block * type.blockSize(),
                                    (block + 1) * type.blockSize()))));
        }
        assertThat(buffer[0]).isEqualTo((byte) 0x5A);
        assertThat(buffer[buffer.length - 1]).isEqualTo((byte) 0x5A);
    }

    static void assertBitsEqual(float[] actual, float[] expected, String what) {
        assertThat(actual).hasSameSizeAs(expected);
        for (int i = 0; i < expected.length; i++) {
            int a = Float.floatToRawIntBits(actual[i]);
            int e = Float.floatToRawIntBits(expected[i]);
            if (a != e) {
                fail("%s: element %d is %s (0x%08x), expected %s (0x%08x)"
                        .formatted(what, i, actual[i], a, expected[i], e));
            }
        }
    }

    private static JsonNode sourceTensor(JsonNode doc, String name) {
        for (JsonNode t : doc.get("source").get("tensors")) {
            if (t.get("name").asText().equals(name)) {
                return t;
            }
        }
        throw new AssertionError("source model has no tensor " + name);
    }

    private static String label(BlockCodec codec) {
        if (codec == BF16Codec.VECTOR || codec == Q4_0Codec.VECTOR
                || codec == Q4_1Codec.VECTOR || codec == Q5_0Codec.VECTOR || codec == Q5_1Codec.VECTOR
                || codec == Q8_0Codec.VECTOR) {
            return "vector";
        }
        return "scalar";
    }

    private static GgmlType typeOf(String name) {
        return GgmlType.byName(name).orElseThrow(() -> new AssertionError("index names unknown type " + name));
    }

    static long elements(JsonNode ne) {
        long n = 1;
        for (JsonNode d : ne) {
            n = Math.multiplyExact(n, d.asLong());
        }
        return n;
    }

    static byte[] readAt(Path file, long offset, int length) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            assertThat(offset + length).as("%s: %d bytes at %d", file, length, offset).isLessThanOrEqualTo(ch.size());
            ByteBuffer buf = ByteBuffer.allocate(length);
            while (buf.hasRemaining()) {
                if (ch.read(buf, offset + buf.position()) < 0) {
                    throw new IOException(file + ": unexpected end at " + (offset + buf.position()));
                }
            }
            return buf.array();
        }
    }

    static float[] readFloats(Path file) throws IOException {
        return toFloats(Files.readAllBytes(file));
    }

    static float[] toFloats(byte[] bytes) {
        float[] out = new float[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }
}
