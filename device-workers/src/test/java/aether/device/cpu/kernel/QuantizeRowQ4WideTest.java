package aether.device.cpu.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link Q4_0BatchKernels#quantizeRowQ4Wide} writes exactly what {@link Q8Activations#quantizeRowQ4} writes: random rows
 * at several scales, rows of exact halves (where round-half-up and the truncation formula could part), the
 * neighbours of one half, zeros, signed zeros, NaN, infinities and subnormal maxima, with and without padding blocks.
 */
@Timeout(60)
class QuantizeRowQ4WideTest {

    @Test
    void shouldWriteTheScalarQuantizationBitForBit() {
        assumeTrue(VectorSupport.wideAvailable(), "no 512-bit vectors here: the wide quantization cannot run");
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        try (Arena arena = Arena.ofConfined()) {
            for (int round = 0; round < 200; round++) {
                int blocks = 1 + rnd.nextInt(20);
                int padded = (blocks + 7) / 8 * 8;
                int cols = 32 * blocks;
                MemorySegment x = arena.allocate(4L * cols, 4);
                for (int i = 0; i < cols; i++) {
                    x.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, value(rnd, round, i));
                }
                short[] axScalar = new short[padded * Q8Activations.Q4_LANES];
                short[] axWide = new short[padded * Q8Activations.Q4_LANES];
                float[] dxScalar = new float[padded];
                float[] dxWide = new float[padded];
                Q8Activations.quantizeRowQ4(x, 0, cols, padded, axScalar, 0, dxScalar, 0);
                Q4_0BatchKernels.quantizeRowQ4Wide(x, 0, cols, padded, axWide, 0, dxWide, 0, new int[16]);
                String where = "round %d, %d blocks, seed %d".formatted(round, blocks, seed);
                assertThat(axWide).as(where).containsExactly(axScalar);
                for (int b = 0; b < padded; b++) {
                    assertThat(Float.floatToRawIntBits(dxWide[b])).as(where + " scale " + b)
                            .isEqualTo(Float.floatToRawIntBits(dxScalar[b]));
                }
            }
        }
    }

    private static float value(Random rnd, int round, int i) {
        return switch (round % 8) {
            case 0 -> (float) rnd.nextGaussian() * (float) Math.pow(10, rnd.nextInt(7) - 3);
            case 1 -> i % 32 == 0 ? 127f : (rnd.nextInt(255) - 127) + 0.5f;   // scale 1: every quant an exact half
            case 2 -> i % 32 == 0 ? 127f : Math.nextAfter(2.5f, rnd.nextBoolean() ? 3 : 2) * (rnd.nextBoolean() ? 1 : -1);
            case 3 -> rnd.nextInt(4) == 0 ? (rnd.nextBoolean() ? 0f : -0f) : (float) rnd.nextGaussian();
            case 4 -> i % 97 == 5 ? Float.NaN : (float) rnd.nextGaussian();
            case 5 -> i % 61 == 3 ? (rnd.nextBoolean() ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY)
                    : (float) rnd.nextGaussian();
            case 6 -> Float.MIN_VALUE * (rnd.nextInt(64) - 32);   // subnormal maxima: 1/d overflows
            default -> (float) rnd.nextGaussian() * 1e-30f;
        };
    }
}
