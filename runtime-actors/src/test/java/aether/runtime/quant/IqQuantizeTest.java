package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Locale;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Quantizers against llama.cpp: the GGUF goldens (IQ4_NL / IQ4_XS variants made by llama-quantize without imatrix)
 * and random rows quantized by libggml's {@code quantize_<type>} (scripts/ggml_iq_reference.py).
 */
class IqQuantizeTest {

    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest
    @EnumSource(names = {"IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4"})
    void shouldQuantizeRandomRowsByteIdenticallyToGgml(GgmlType type) {
        String name = type.name().toLowerCase(Locale.ROOT);
        float[] src = IqCodecs.floats(IqCodecs.resource(name + ".src.f32.bin"));
        byte[] expected = IqCodecs.resource(name + ".quant.bin");
        BlockCodec codec = IqCodecs.BY_TYPE.get(type);
        assertThat(codec.canQuantize()).isTrue();
        MemorySegment out = MemorySegment.ofArray(new byte[expected.length]);
        codec.quantize(src, 0, src.length, out, 0);
        byte[] actual = IqCodecs.bytes(out);
        assertThat(differingBlocks(type, expected, actual)).as("%s blocks differing from ggml", type).isZero();
    }

    @ParameterizedTest
    @EnumSource(names = {"IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4"})
    void shouldHonourSourceIndexAndUnalignedDestinationOffset(GgmlType type) {
        String name = type.name().toLowerCase(Locale.ROOT);
        float[] src = IqCodecs.floats(IqCodecs.resource(name + ".src.f32.bin"));
        byte[] expected = IqCodecs.resource(name + ".quant.bin");
        int skip = 3 * type.blockSize(); // elements of the row skipped
        int count = 256;
        byte[] out = new byte[5 + (int) type.bytesFor(count) + 5];
        Arrays.fill(out, (byte) 0x5A);
        IqCodecs.BY_TYPE.get(type).quantize(src, skip, count, MemorySegment.ofArray(out), 5);
        long from = type.bytesFor(skip);
        assertThat(Arrays.copyOfRange(out, 5, out.length - 5))
                .isEqualTo(Arrays.copyOfRange(expected, (int) from, (int) (from + type.bytesFor(count))));
        assertThat(out[4]).isEqualTo((byte) 0x5A);
        assertThat(out[out.length - 5]).isEqualTo((byte) 0x5A);
    }

    /**
     * The golden variants: our quantizer on the F32 source must fit at least as well as llama-quantize did (RMSE
     * against the source), and we report how many blocks are byte-identical; identity is asserted for all of them.
     */
    @ParameterizedTest
    @CsvSource({"IQ4_NL, blk.0.attn_k.weight", "IQ4_NL, blk.0.ffn_down.weight", "IQ4_XS, blk.0.attn_k.weight",
        "IQ4_XS, blk.0.ffn_down.weight"})
    void shouldQuantizeGoldenSourceAtLeastAsWellAsLlamaQuantize(GgmlType type, String tensor) throws IOException {
        Path index = SharedData.require("golden/quant/index.json");
        JsonNode root = new ObjectMapper().readTree(index.toFile());
        Path dir = index.getParent();
        JsonNode source = find(root.path("source").path("tensors"), tensor);
        float[] src = readF32(dir.resolve(root.path("source").path("file").asText()), source.path("data_offset").asLong(),
                source.path("n_bytes").asLong());
        JsonNode variant = null;
        for (JsonNode v : root.path("variants")) {
            if (v.path("expected_matrix_type").asText().equalsIgnoreCase(type.name())) {
                variant = v;
            }
        }
        assertThat(variant).as("variant of type %s in index.json", type).isNotNull();
        JsonNode quantized = find(variant.path("tensors"), tensor);
        assertThat(quantized.path("ggml_type").asText()).isEqualToIgnoringCase(type.name());
        byte[] theirs = readBytes(dir.resolve(variant.path("file").asText()), quantized.path("data_offset").asLong(),
                quantized.path("n_bytes").asLong());

        BlockCodec codec = IqCodecs.BY_TYPE.get(type);
        MemorySegment ours = MemorySegment.ofArray(new byte[theirs.length]);
        codec.quantize(src, 0, src.length, ours, 0);

        float[] oursDecoded = new float[src.length];
        float[] theirsDecoded = new float[src.length];
        codec.dequantize(ours, 0, oursDecoded, 0, src.length);
        codec.dequantize(MemorySegment.ofArray(theirs), 0, theirsDecoded, 0, src.length);
        double rmseOurs = rmse(src, oursDecoded);
        double rmseTheirs = rmse(src, theirsDecoded);
        int differing = differingBlocks(type, theirs, IqCodecs.bytes(ours));
        System.out.printf("%s %s: RMSE ours %.9g, llama.cpp %.9g; %d of %d blocks byte-identical%n", type, tensor,
                rmseOurs, rmseTheirs, theirs.length / type.blockBytes() - differing, theirs.length / type.blockBytes());
        assertThat(rmseOurs).isLessThanOrEqualTo(rmseTheirs * (1 + 1e-6));
        assertThat(differing).as("blocks differing from llama-quantize's").isZero();
    }

    private static int differingBlocks(GgmlType type, byte[] expected, byte[] actual) {
        assertThat(actual).hasSameSizeAs(expected);
        int n = 0;
        for (int off = 0; off < expected.length; off += type.blockBytes()) {
            if (!Arrays.equals(expected, off, off + type.blockBytes(), actual, off, off + type.blockBytes())) {
                n++;
            }
        }
        return n;
    }

    private static JsonNode find(JsonNode tensors, String name) {
        for (JsonNode t : tensors) {
            if (t.path("name").asText().equals(name)) {
                return t;
            }
        }
        throw new AssertionError("tensor " + name + " not in index.json");
    }

    private static float[] readF32(Path file, long offset, long nBytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, offset, nBytes, arena);
            float[] out = new float[(int) (nBytes / 4)];
            MemorySegment.copy(seg, FLOAT, 0, out, 0, out.length);
            return out;
        }
    }

    private static byte[] readBytes(Path file, long offset, long nBytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            return ch.map(FileChannel.MapMode.READ_ONLY, offset, nBytes, arena).toArray(ValueLayout.JAVA_BYTE);
        }
    }

    static double rmse(float[] a, float[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - b[i];
            sum += d * d;
        }
        return Math.sqrt(sum / a.length);
    }
}
