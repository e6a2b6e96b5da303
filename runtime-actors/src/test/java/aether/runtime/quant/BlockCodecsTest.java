package aether.runtime.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class BlockCodecsTest {

    @ParameterizedTest
    @EnumSource(GgmlType.class)
    void shouldHaveACodecOfTheRightTypeForEveryGgmlType(GgmlType type) {
        var found = BlockCodecs.find(type);
        assertThat(found).as("codec for %s", type).isPresent();
        assertThat(found.get().type()).isEqualTo(type);
        assertThat(BlockCodecs.require(type)).isSameAs(found.get());
    }

    @Test
    void shouldQuantizeTheFloatTypesAndNotTheIntegerTypes() {
        for (GgmlType t : new GgmlType[] {GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.F64, GgmlType.Q4_0,
                GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q8_1}) {
            assertThat(BlockCodecs.require(t).canQuantize()).as("%s", t).isTrue();
        }
        for (GgmlType t : new GgmlType[] {GgmlType.I8, GgmlType.I16, GgmlType.I32, GgmlType.I64}) {
            BlockCodec codec = BlockCodecs.require(t);
            assertThat(codec.canQuantize()).isFalse();
            assertThatThrownBy(() -> codec.quantize(new float[1], 0, 1, MemorySegment.ofArray(new byte[8]), 0))
                    .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining(t.name());
        }
    }

    @Test
    void shouldConvertIntegerTensorsLikeACCast() {
        long[] values = {0, 1, -1, 127, -128, 32767, -32768, Integer.MAX_VALUE, Integer.MIN_VALUE, 16777217,
                Long.MAX_VALUE, Long.MIN_VALUE, 9007199254740993L};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(values.length * 8L + 1);
            for (GgmlType t : new GgmlType[] {GgmlType.I8, GgmlType.I16, GgmlType.I32, GgmlType.I64}) {
                int size = t.blockBytes();
                for (int i = 0; i < values.length; i++) {
                    long at = 1 + (long) i * size;   // odd offset: unaligned
                    switch (size) {
                        case 1 -> seg.set(LittleEndian.BYTE, at, (byte) values[i]);
                        case 2 -> seg.set(LittleEndian.SHORT, at, (short) values[i]);
                        case 4 -> seg.set(LittleEndian.INT, at, (int) values[i]);
                        default -> seg.set(LittleEndian.LONG, at, values[i]);
                    }
                }
                float[] out = BlockCodecs.dequantize(t, seg, 1, values.length);
                for (int i = 0; i < values.length; i++) {
                    long truncated = switch (size) {
                        case 1 -> (byte) values[i];
                        case 2 -> (short) values[i];
                        case 4 -> (int) values[i];
                        default -> values[i];
                    };
                    assertThat(out[i]).as("%s %d", t, truncated).isEqualTo((float) truncated);
                }
            }
        }
    }

    @Test
    void shouldRoundTripF32AndF64AndNarrowF16AndBf16() {
        SplittableRandom random = new SplittableRandom(5);
        float[] src = new float[1001];
        for (int i = 0; i < src.length; i++) {
            src[i] = Float.intBitsToFloat(random.nextInt());
        }
        src[0] = -0.0f;
        src[1] = Float.NaN;
        for (GgmlType t : new GgmlType[] {GgmlType.F32, GgmlType.F64, GgmlType.F16, GgmlType.BF16}) {
            BlockCodec codec = BlockCodecs.require(t);
            MemorySegment seg = MemorySegment.ofArray(new byte[(int) t.bytesFor(src.length) + 3]);
            codec.quantize(src, 0, src.length, seg, 3);
            float[] back = BlockCodecs.dequantize(t, seg, 3, src.length);
            for (int i = 0; i < src.length; i++) {
                float expected = switch (t) {
                    case F16 -> Float.float16ToFloat(Float.floatToFloat16(src[i]));
                    case BF16 -> Float.intBitsToFloat(CFloat.floatToBf16(src[i]) << 16);
                    default -> src[i];
                };
                if (Float.isNaN(expected)) {
                    assertThat(back[i]).as("%s NaN", t).isNaN();
                } else {
                    assertThat(Float.floatToRawIntBits(back[i])).as("%s %s", t, src[i])
                            .isEqualTo(Float.floatToRawIntBits(expected));
                }
            }
        }
    }

    @Test
    void shouldRejectBadCountsAndRangesWithClearMessages() {
        MemorySegment seg = MemorySegment.ofArray(new byte[34 * 2]);
        assertThatThrownBy(() -> BlockCodecs.dequantize(GgmlType.Q8_0, seg, 0, 33))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("Q8_0").hasMessageContaining("33");
        assertThatThrownBy(() -> BlockCodecs.dequantize(GgmlType.Q8_0, seg, 0, 96))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("102 bytes at offset 0")
                .hasMessageContaining("68 bytes");
        assertThatThrownBy(() -> BlockCodecs.dequantize(GgmlType.Q8_0, seg, 40, 32))
                .isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> BlockCodecs.dequantize(GgmlType.Q8_0, seg, -1, 32))
                .isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> BlockCodecs.dequantize(GgmlType.F32, seg, 0, -4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-4");
        assertThatThrownBy(() -> BlockCodecs.dequantize(GgmlType.F32, seg, 0, Integer.MAX_VALUE - 7L))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("out of range");
        assertThatThrownBy(() -> BlockCodecs.dequantize(GgmlType.IQ2_XXS, seg, 0, 512))   // 132 bytes: too many either way
                .isInstanceOf(IndexOutOfBoundsException.class);
        for (GgmlType t : new GgmlType[] {GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
                GgmlType.Q8_0, GgmlType.Q8_1}) {
            BlockCodec codec = BlockCodecs.require(t);
            assertThatThrownBy(() -> codec.dequantize(seg, 0, new float[64], 0, 31))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(t.name());
            assertThatThrownBy(() -> codec.quantize(new float[64], 0, 48, seg, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("48");
        }
    }

    @Test
    void shouldNeverReadOrWritePastTheSegment() {
        for (GgmlType t : GgmlType.values()) {
            BlockCodec codec = BlockCodecs.require(t);
            int count = t.blockSize() * 2;
            MemorySegment tooSmall = MemorySegment.ofArray(new byte[(int) t.bytesFor(count) - 1]);
            if (t != GgmlType.Q8_K) {   // Q8_K's trailing bsums are not needed to dequantize, so never read
                assertThatThrownBy(() -> codec.dequantize(tooSmall, 0, new float[count], 0, count))
                        .as("dequantize %s", t).isInstanceOf(IndexOutOfBoundsException.class);
            }
            if (codec.canQuantize()) {
                assertThatThrownBy(() -> codec.quantize(new float[count], 0, count, tooSmall, 0))
                        .as("quantize %s", t).isInstanceOf(IndexOutOfBoundsException.class);
            }
        }
    }

    /** The scalar codecs (for lukewarm callers) decode exactly what the default ones decode. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"})
    void scalarCodecsDecodeWhatTheDefaultCodecsDecode(GgmlType type) {
        BlockCodec scalar = BlockCodecs.requireScalar(type);
        BlockCodec codec = BlockCodecs.require(type);
        assertThat(scalar.type()).isEqualTo(type);
        int count = type.isQuantized() ? 9 * type.blockSize() : 301;
        SplittableRandom random = new SplittableRandom(41 + type.id());
        byte[] bytes = new byte[(int) type.bytesFor(count)];
        random.nextBytes(bytes);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(bytes.length);
            src.copyFrom(MemorySegment.ofArray(bytes));
            float[] expected = new float[count];
            float[] actual = new float[count];
            codec.dequantize(src, 0, expected, 0, count);
            scalar.dequantize(src, 0, actual, 0, count);
            for (int i = 0; i < count; i++) {
                if (!(Float.isNaN(expected[i]) && Float.isNaN(actual[i]))) {
                    assertThat(actual[i]).as("%s element %d", type, i).isEqualTo(expected[i]);
                }
            }
        }
    }
}
