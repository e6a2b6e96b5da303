package aether.device.cpu.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import aether.device.cpu.KernelPool;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The small-batch (multi-row) Q8_0 kernels ({@link Q8_0BatchKernels}), through {@link Matmul} at both vector widths:
 * against the float64 reference with MatmulTest's Q8 bounds, bit-identical per token to the same token multiplied
 * alone for every batch size the register blocking splits differently (2, 3, 5, 8, 13 = 4+4+4+1), and, from
 * {@link Matmul#PLANAR_GEMM_MIN_TOKENS} tokens, the GEMM again (f32 activations, MatmulTest's float bound). Fresh
 * random inputs each run; the seed is in every message.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class Q8_0BatchKernelsTest {
    private static final int[] BATCHES = {2, 3, 5, 8, 13};
    private static KernelPool pool1;
    private static KernelPool pool2;

    @BeforeAll
    static void startPools() {
        pool1 = new KernelPool(1, KernelPool.DEFAULT_SPIN_NS);
        pool2 = new KernelPool(2, 20_000);
    }

    @AfterAll
    static void stopPools() {
        pool1.close();
        pool2.close();
    }

    static IntStream widths() {
        return Arrays.stream(MatmulTest.widths());
    }

    @ParameterizedTest(name = "bits={0}")
    @MethodSource("widths")
    void shouldMatchFloat64ReferenceAndTheOneTokenKernelBitForBit(int bits) {
        assumeTrue(VectorSupport.available(), "vector module unavailable");
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        try (Arena arena = Arena.ofShared()) {
            // 4128 (129 blocks) and 8192: long enough for the one-token body to read paired quants (PAIRS_MIN_BLOCKS)
            for (int in : new int[] {32, 96, 256, 1024, 4128, 8192}) {
                for (int out : new int[] {1, 17, 64, 131}) {
                    MemorySegment w = RandomWeights.create(arena, GgmlType.Q8_0, out, in, rnd);
                    double[][] wd = new double[out][];
                    for (int r = 0; r < out; r++) {
                        wd[r] = RandomWeights.row(GgmlType.Q8_0, w, r, in);
                    }
                    for (int tokens : BATCHES) {
                        float[][] xs = activations(rnd, tokens, in);
                        MemorySegment x = segment(arena, xs, in);
                        for (KernelPool pool : new KernelPool[] {pool1, pool2}) {
                            String where = "bits=%d in=%d out=%d tokens=%d threads=%d seed=%d"
                                    .formatted(bits, in, out, tokens, pool.threads(), seed);
                            Matmul mm = new Matmul(pool, true, Matmul.Activations.AUTO, bits, Matmul.PLANAR_GEMM_MIN_TOKENS);
                            MemorySegment y = arena.allocate((long) tokens * out * 4);
                            y.fill((byte) 0x7f);   // garbage: every output must be written
                            mm.multiply(GgmlType.Q8_0, w, out, in, x, tokens, y);
                            MatmulTest.check(GgmlType.Q8_0, w, wd, xs, y, true, where);
                            MemorySegment alone = arena.allocate(out * 4L);
                            for (int t = 0; t < tokens; t++) {
                                mm.multiply(GgmlType.Q8_0, w, out, in, x.asSlice((long) t * in * 4, in * 4L), 1, alone);
                                for (int r = 0; r < out; r++) {
                                    float got = y.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * out + r);
                                    float want = alone.getAtIndex(ValueLayout.JAVA_FLOAT, r);
                                    assertThat(Float.floatToRawIntBits(got))
                                            .as("%s row=%d token=%d batch %s alone %s", where, r, t, got, want)
                                            .isEqualTo(Float.floatToRawIntBits(want));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "bits={0}")
    @MethodSource("widths")
    void shouldTakeTheGemmWithFloatActivationsFromTheThreshold(int bits) {
        assumeTrue(VectorSupport.available(), "vector module unavailable");
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int in = 256;
        int out = 37;
        int tokens = Matmul.PLANAR_GEMM_MIN_TOKENS;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment w = RandomWeights.create(arena, GgmlType.Q8_0, out, in, rnd);
            double[][] wd = new double[out][];
            for (int r = 0; r < out; r++) {
                wd[r] = RandomWeights.row(GgmlType.Q8_0, w, r, in);
            }
            float[][] xs = activations(rnd, tokens, in);
            MemorySegment y = arena.allocate((long) tokens * out * 4);
            new Matmul(pool2, true, Matmul.Activations.AUTO, bits, Matmul.PLANAR_GEMM_MIN_TOKENS)
                    .multiply(GgmlType.Q8_0, w, out, in, segment(arena, xs, in), tokens, y);
            // the float bound is far tighter than the Q8 activations' rounding: it fails if they were quantized
            MatmulTest.check(GgmlType.Q8_0, w, wd, xs, y, false, "bits=%d seed=%d".formatted(bits, seed));
        }
    }

    private static float[][] activations(Random rnd, int tokens, int in) {
        float[][] xs = new float[tokens][in];
        for (int t = 0; t < tokens; t++) {
            float scale = (float) Math.pow(10, rnd.nextInt(3) - 1);
            for (int i = 0; i < in; i++) {
                xs[t][i] = (rnd.nextFloat() * 2 - 1) * scale;
            }
        }
        return xs;
    }

    private static MemorySegment segment(Arena arena, float[][] xs, int in) {
        MemorySegment x = arena.allocate((long) xs.length * in * 4, 64);
        for (int t = 0; t < xs.length; t++) {
            MemorySegment.copy(xs[t], 0, x, ValueLayout.JAVA_FLOAT, (long) t * in * 4, in);
        }
        return x;
    }
}
