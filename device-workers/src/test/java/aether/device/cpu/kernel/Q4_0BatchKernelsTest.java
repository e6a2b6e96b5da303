package aether.device.cpu.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import aether.device.cpu.KernelPool;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The small-batch (multi-row) Q4_0 planar kernels: against the float64 reference with MatmulTest's Q8 bounds (the
 * exact sum of the Q8-rounded activations within (blocks + 16)·u·S_q, and the unquantized sum within the activation
 * rounding on top), and bit-identical per token to the same token multiplied alone, for every batch size the
 * register blocking splits differently (2, 3, 5, 8, 13 = 4+4+4+1) on fresh random inputs each run. Both widths are
 * named explicitly: the 256-bit kernels ({@link Q4_0BatchKernels#rowsPlanar}) run everywhere, the 512-bit ones
 * ({@link Q4_0BatchKernels#rowsPlanarWide}) where the CPU has AVX-512 and are skipped, with the reason, elsewhere.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class Q4_0BatchKernelsTest {
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

    @ParameterizedTest(name = "bits={0}")
    @ValueSource(ints = {256, 512})
    void shouldMatchFloat64ReferenceAndTheOneTokenKernelBitForBit(int bits) {
        assumeTrue(VectorSupport.available(), "vector module unavailable");
        assumeTrue(bits == 256 || VectorSupport.wideAvailable(),
                "no 512-bit vectors here (preferred float species %d bits): the AVX-512 kernels cannot run"
                        .formatted(VectorSupport.available() ? jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() : 0));
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        try (Arena arena = Arena.ofShared()) {
            // 1, 3, 8, 16, 32 blocks: padding and none; 129 (padded to 136) and 256: long enough for the 512-bit
            // one-token body to read its activations as bytes (BYTE_ACTIVATIONS_MIN_BLOCKS)
            for (int in : new int[] {32, 96, 256, 512, 1024, 4128, 8192}) {
                for (int out : new int[] {1, 17, 64, 131}) {
                    MemorySegment w = RandomWeights.create(arena, GgmlType.Q4_0, out, in, rnd);
                    PackedWeights pw = PackedWeights.prepare(GgmlType.Q4_0, w, out, in, arena);
                    assertThat(pw.layout()).isEqualTo(PackedWeights.Layout.Q4_0_PLANAR);
                    double[][] wd = new double[out][];
                    for (int r = 0; r < out; r++) {
                        wd[r] = RandomWeights.row(GgmlType.Q4_0, w, r, in);
                    }
                    for (int tokens : BATCHES) {
                        float[][] xs = new float[tokens][in];
                        MemorySegment x = arena.allocate((long) tokens * in * 4, 64);
                        for (int t = 0; t < tokens; t++) {
                            float scale = (float) Math.pow(10, rnd.nextInt(3) - 1);
                            for (int i = 0; i < in; i++) {
                                xs[t][i] = (rnd.nextFloat() * 2 - 1) * scale;
                            }
                            MemorySegment.copy(xs[t], 0, x, ValueLayout.JAVA_FLOAT, (long) t * in * 4, in);
                        }
                        for (KernelPool pool : new KernelPool[] {pool1, pool2}) {
                            String where = "bits=%d in=%d out=%d tokens=%d threads=%d seed=%d"
                                    .formatted(bits, in, out, tokens, pool.threads(), seed);
                            Matmul mm = new Matmul(pool, true, Matmul.Activations.AUTO, bits,
                                    Matmul.PLANAR_GEMM_MIN_TOKENS);
                            MemorySegment y = arena.allocate((long) tokens * out * 4);
                            y.fill((byte) 0x7f);
                            mm.multiply(pw, x, tokens, y);
                            MatmulTest.check(GgmlType.Q4_0, w, wd, xs, y, true, where);
                            MemorySegment alone = arena.allocate(out * 4L);
                            for (int t = 0; t < tokens; t++) {
                                mm.multiply(pw, x.asSlice((long) t * in * 4, in * 4L), 1, alone);
                                for (int r = 0; r < out; r++) {
                                    float got = y.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * out + r);
                                    float want = alone.getAtIndex(ValueLayout.JAVA_FLOAT, r);
                                    assertThat(Float.floatToRawIntBits(got)).as("%s row=%d token=%d batch %s alone %s", where, r, t, got, want)
                                            .isEqualTo(Float.floatToRawIntBits(want));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
