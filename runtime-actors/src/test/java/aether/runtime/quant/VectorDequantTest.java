package aether.runtime.quant;

import static aether.runtime.quant.LegacyGoldenTest.assertBitsEqual;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The Vector API paths against the scalar references on random blocks: every block count from 1 to a 129-block tail,
 * unaligned source offsets, destinations at odd indices, and every f16/bf16 bit pattern. Sources are off-heap, as
 * mapped GGUF data is.
 */
class VectorDequantTest {

    @BeforeAll
    static void requireVectorModule() {
        assumeTrue(Vectorization.available(), "jdk.incubator.vector missing or narrower than 256 bits");
    }

    static Stream<Arguments> pairs() {
        return Stream.of(
                Arguments.of(Q8_0Codec.SCALAR, Q8_0Codec.VECTOR),
                Arguments.of(Q4_0Codec.SCALAR, Q4_0Codec.VECTOR),
                Arguments.of(Q4_1Codec.SCALAR, Q4_1Codec.VECTOR),
                Arguments.of(Q5_0Codec.SCALAR, Q5_0Codec.VECTOR),
                Arguments.of(Q5_1Codec.SCALAR, Q5_1Codec.VECTOR),
                Arguments.of(BF16Codec.SCALAR, BF16Codec.VECTOR));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pairs")
    void shouldMatchScalarOnRandomBlocks(BlockCodec scalar, BlockCodec vector) {
        GgmlType type = scalar.type();
        assertThat(vector.type()).isEqualTo(type);
        SplittableRandom random = new SplittableRandom(0xAE7E5L + type.id());
        // Block types: 1, 3, 7, 129 blocks; element types: sizes that reach every tail of an 8-lane loop.
        List<Integer> counts = type.isQuantized()
                ? List.of(1, 3, 7, 129).stream().map(b -> b * type.blockSize()).toList()
                : List.of(1, 3, 7, 8, 9, 15, 16, 17, 207, 4097);
        try (Arena arena = Arena.ofConfined()) {
        for (int count : counts) {
            for (int srcShift : new int[] {0, 1, 3}) {
                for (int round = 0; round < 20; round++) {
                    byte[] bytes = new byte[(int) type.bytesFor(count) + srcShift];
                    random.nextBytes(bytes);
                    if (type.isQuantized() && round % 2 == 0) {
                        tameScales(bytes, srcShift, type, random);
                    }
                    // Off-heap like a mapped file: BF16's vector path only runs on native segments
                    MemorySegment src = arena.allocate(bytes.length);
                    src.copyFrom(MemorySegment.ofArray(bytes));
                    float[] expected = new float[count + 5];
                    float[] actual = new float[count + 5];
                    scalar.dequantize(src, srcShift, expected, 5, count);
                    vector.dequantize(src, srcShift, actual, 5, count);
                    String what = "%s count %d shift %d round %d".formatted(type, count, srcShift, round);
                    if (type.isQuantized()) {
                        assertBitsEqualOrBothNaN(actual, expected, what);
                    } else {
                        assertBitsEqual(actual, expected, what);
                    }
                }
            }
        }
        }
    }

    /**
     * Bit equality, except that two NaNs match whatever their payloads: with random bits both d and m can be NaN, and
     * the payload of NaN + NaN depends on operand order, which C2 may commute (Java leaves it unspecified).
     */
    private static void assertBitsEqualOrBothNaN(float[] actual, float[] expected, String what) {
        float[] a = actual.clone();
        for (int i = 0; i < a.length; i++) {
            if (Float.isNaN(a[i]) && Float.isNaN(expected[i])) {
                a[i] = expected[i];
            }
        }
        assertBitsEqual(a, expected, what);
    }

    /** Random f16 scales are often NaN/inf/huge; half of the rounds use realistic finite scales (and mins) instead. */
    private static void tameScales(byte[] bytes, int shift, GgmlType type, SplittableRandom random) {
        int halves = type == GgmlType.Q4_1 || type == GgmlType.Q5_1 ? 2 : 1;
        MemorySegment seg = MemorySegment.ofArray(bytes);
        for (long block = shift; block + type.blockBytes() <= bytes.length; block += type.blockBytes()) {
            for (int h = 0; h < halves; h++) {
                float v = (float) ((random.nextDouble() - 0.5) * Math.pow(10, random.nextInt(-6, 3)));
                seg.set(LittleEndian.SHORT, block + 2L * h, Float.floatToFloat16(v));
            }
        }
    }

    @Test
    void shouldWidenEveryF16AndBf16BitPatternExactly() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment all = arena.allocate(2L * 65536 + 1);
            for (int h = 0; h < 65536; h++) {
                all.set(LittleEndian.SHORT, 1 + 2L * h, (short) h);   // odd offset: unaligned loads
            }
            float[] expected = new float[65536];
            for (int h = 0; h < 65536; h++) {
                expected[h] = Float.float16ToFloat((short) h);
            }
            float[] f16 = new float[65536];
            F16Codec.INSTANCE.dequantize(all, 1, f16, 0, 65536);
            assertBitsEqual(f16, expected, "f16");

            float[] bf16 = new float[65536];
            for (BlockCodec codec : new BlockCodec[] {BF16Codec.VECTOR, BF16Codec.SCALAR}) {
                codec.dequantize(all, 1, bf16, 0, 65536);
                for (int h = 0; h < 65536; h++) {
                    assertThat(Float.floatToRawIntBits(bf16[h])).isEqualTo(h << 16);
                }
            }
        }
    }

    @Test
    void shouldUseVectorPathOnlyWhenEnabledAndAvailable() {
        boolean enabled = !"false".equalsIgnoreCase(System.getProperty("aether.vector"));
        assertThat(Vectorization.ENABLED).isEqualTo(enabled && Vectorization.available());
        boolean on = Vectorization.ENABLED;
        assertThat(BF16Codec.INSTANCE).isSameAs(on ? BF16Codec.VECTOR : BF16Codec.SCALAR);
        assertThat(Q8_0Codec.INSTANCE).isSameAs(on ? Q8_0Codec.VECTOR : Q8_0Codec.SCALAR);
        assertThat(Q4_0Codec.INSTANCE).isSameAs(on ? Q4_0Codec.VECTOR : Q4_0Codec.SCALAR);
        assertThat(Q4_1Codec.INSTANCE).isSameAs(on ? Q4_1Codec.VECTOR : Q4_1Codec.SCALAR);
        assertThat(Q5_0Codec.INSTANCE).isSameAs(on ? Q5_0Codec.VECTOR : Q5_0Codec.SCALAR);
        assertThat(Q5_1Codec.INSTANCE).isSameAs(on ? Q5_1Codec.VECTOR : Q5_1Codec.SCALAR);
        assertThat(BlockCodecs.require(GgmlType.Q8_0)).isSameAs(Q8_0Codec.INSTANCE);
    }
}
