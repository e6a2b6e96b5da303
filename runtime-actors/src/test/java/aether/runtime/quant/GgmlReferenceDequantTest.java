package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Locale;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Bit-exact comparison with llama.cpp's own {@code dequantize_row_<type>} on random blocks (random bytes, finite f16
 * scales), produced by scripts/ggml_iq_reference.py from the real libggml-base. Covers every type of this branch,
 * including those without a GGUF golden.
 */
class GgmlReferenceDequantTest {

    @ParameterizedTest
    @EnumSource(names = {"IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS",
        "IQ3_S", "IQ1_S", "IQ1_M"})
    void shouldDecodeRandomBlocksBitIdenticallyToGgml(GgmlType type) {
        String name = type.name().toLowerCase(Locale.ROOT);
        byte[] blocks = IqCodecs.resource(name + ".blocks.bin");
        float[] expected = IqCodecs.floats(IqCodecs.resource(name + ".f32.bin"));
        int count = blocks.length / type.blockBytes() * type.blockSize();
        assertThat(expected).hasSize(count);
        assertThat(count).isGreaterThanOrEqualTo(48 * 256);

        BlockCodec codec = IqCodecs.BY_TYPE.get(type);
        float[] actual = new float[count];
        codec.dequantize(MemorySegment.ofArray(blocks), 0, actual, 0, count);
        int diff = IqCodecs.firstBitDifference(expected, actual);
        assertThat(diff).as("%s: first differing element %d (ggml %s, ours %s)", type, diff,
                diff < 0 ? "" : expected[diff], diff < 0 ? "" : actual[diff]).isEqualTo(-1);
    }

    @ParameterizedTest
    @EnumSource(names = {"IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS",
        "IQ3_S", "IQ1_S", "IQ1_M"})
    void shouldHonourOffsetsOnUnalignedNativeMemory(GgmlType type) {
        String name = type.name().toLowerCase(Locale.ROOT);
        byte[] blocks = IqCodecs.resource(name + ".blocks.bin");
        float[] expected = IqCodecs.floats(IqCodecs.resource(name + ".f32.bin"));
        int skipBlocks = 3;
        int count = 5 * type.blockSize();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(blocks.length + 7);
            MemorySegment.copy(MemorySegment.ofArray(blocks), 0, seg, 7, blocks.length);
            float[] actual = new float[count + 11];
            actual[10] = 42f;
            actual[count + 10] = -42f;
            IqCodecs.BY_TYPE.get(type).dequantize(seg, 7 + (long) skipBlocks * type.blockBytes(), actual, 10, count);
            assertThat(actual[count + 10]).as("element past the requested range untouched").isEqualTo(-42f);
            for (int i = 0; i < count; i++) {
                assertThat(Float.floatToRawIntBits(actual[10 + i])).as("%s element %d", type, i)
                        .isEqualTo(Float.floatToRawIntBits(expected[skipBlocks * type.blockSize() + i]));
            }
        }
    }
}
