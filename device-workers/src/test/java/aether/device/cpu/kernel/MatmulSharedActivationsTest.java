package aether.device.cpu.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cpu.KernelPool;
import aether.device.cpu.kernel.Matmul.Activations;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link Matmul#multiply(PackedWeights, MemorySegment, int, MemorySegment, boolean)}: a call told its input is the
 * previous call's reuses the activations that call quantized (one quantization for the q, k and v projections of a
 * row), with the same bits as quantizing again; a call whose activations need another format, shape or memory range
 * quantizes anyway, whatever the flag says.
 */
@Timeout(120)
class MatmulSharedActivationsTest {

    private static final int IN = 512;   // two Q8_K super-blocks, 16 Q8_0 blocks
    private static KernelPool pool;

    @BeforeAll
    static void startPool() {
        pool = new KernelPool(2, 0);
    }

    @AfterAll
    static void stopPool() {
        pool.close();
    }

    /** Every type with an int8 decode path, at every vector width here and on the scalar references (0), 1 and 3 tokens. */
    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (GgmlType type : List.of(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K)) {
            for (int mode : MatmulTest.modes()) {
                for (int tokens : new int[] {1, 3}) {
                    cases.add(Arguments.of(type, mode, tokens));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} bits={1} tokens={2}")
    @MethodSource("cases")
    void shouldReuseTheQuantizedInputOnlyWhenToldAndStillValid(GgmlType type, int mode, int tokens) {
        org.junit.jupiter.api.Assumptions.assumeTrue(mode == 0 || VectorSupport.available(), "no vector module");
        Random rnd = new Random(11);
        try (Arena arena = Arena.ofShared()) {
            PackedWeights a = weights(arena, type, 40, IN, rnd);
            PackedWeights b = weights(arena, type, 24, IN, rnd);
            MemorySegment x = input(arena, rnd, tokens, IN);
            Matmul m = MatmulTest.matmul(pool, mode, Activations.Q8);
            MemorySegment yb = arena.allocate(4L * tokens * b.outFeatures());

            m.multiply(a, x, tokens, arena.allocate(4L * tokens * a.outFeatures()), false);
            m.multiply(b, x, tokens, yb, true);
            assertThat(m.activationQuantizations()).as("the second call reuses the first's activations").isEqualTo(1);
            float[] expected = fresh(pool, mode, b, x, tokens, arena);
            assertThat(yb.toArray(ValueLayout.JAVA_FLOAT)).as("shared activations, the same bits").containsExactly(expected);

            // the flag is the caller's promise: with it, changed values in the same memory are not looked at ...
            MemorySegment.copy(input(arena, new Random(99), tokens, IN), 0, x, 0, x.byteSize());
            m.multiply(b, x, tokens, yb, true);
            assertThat(m.activationQuantizations()).isEqualTo(1);
            assertThat(yb.toArray(ValueLayout.JAVA_FLOAT)).containsExactly(expected);
            // ... without it they are quantized again
            m.multiply(b, x, tokens, yb, false);
            assertThat(m.activationQuantizations()).isEqualTo(2);
            assertThat(yb.toArray(ValueLayout.JAVA_FLOAT)).containsExactly(fresh(pool, mode, b, x, tokens, arena));

            // another memory range, another shape: quantized whatever the flag says
            MemorySegment other = input(arena, rnd, tokens, IN);
            m.multiply(b, other, tokens, yb, true);
            assertThat(m.activationQuantizations()).as("another input segment").isEqualTo(3);
            assertThat(yb.toArray(ValueLayout.JAVA_FLOAT)).containsExactly(fresh(pool, mode, b, other, tokens, arena));
            PackedWeights narrow = weights(arena, type, 24, IN / 2, rnd);
            MemorySegment yn = arena.allocate(4L * narrow.outFeatures());
            m.multiply(narrow, other.asSlice(0, 4L * IN / 2), 1, yn, true);
            assertThat(m.activationQuantizations()).as("a shorter row of the same memory").isEqualTo(4);
            assertThat(yn.toArray(ValueLayout.JAVA_FLOAT))
                    .containsExactly(fresh(pool, mode, narrow, other.asSlice(0, 4L * IN / 2), 1, arena));
        }
    }

    @Test
    void shouldQuantizeAgainForWeightsThatTakeAnotherActivationFormat() {
        org.junit.jupiter.api.Assumptions.assumeTrue(VectorSupport.available(), "no vector module");
        Random rnd = new Random(12);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = input(arena, rnd, 1, IN);
            Matmul m = new Matmul(pool);
            // Q4_0 (int16 planar), Q8_0 (Q8_0 blocks), Q4_K and Q6_K (Q8_K: shared), Q8_0 again (only the last quantization
            // is remembered)
            GgmlType[] order = {GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0};
            long[] expectedCount = {1, 2, 3, 3, 4};
            for (int i = 0; i < order.length; i++) {
                PackedWeights w = weights(arena, order[i], 32, IN, rnd);
                MemorySegment y = arena.allocate(4L * w.outFeatures());
                m.multiply(w, x, 1, y, i > 0);
                assertThat(m.activationQuantizations()).as("after %s", order[i]).isEqualTo(expectedCount[i]);
                assertThat(y.toArray(ValueLayout.JAVA_FLOAT)).as(order[i].name())
                        .containsExactly(fresh(pool, VectorSupport.defaultBits(), w, x, 1, arena));
            }
        }
    }

    @Test
    void shouldQuantizeEveryCallWhenSharingIsSwitchedOff() {
        org.junit.jupiter.api.Assumptions.assumeTrue(VectorSupport.available(), "no vector module");
        Random rnd = new Random(13);
        String before = System.setProperty(Matmul.SHARE_ACTIVATIONS_PROPERTY, "false");
        Matmul m;
        try {
            m = new Matmul(pool);
        } finally {
            if (before == null) {
                System.clearProperty(Matmul.SHARE_ACTIVATIONS_PROPERTY);
            } else {
                System.setProperty(Matmul.SHARE_ACTIVATIONS_PROPERTY, before);
            }
        }
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = input(arena, rnd, 1, IN);
            PackedWeights w = weights(arena, GgmlType.Q4_0, 32, IN, rnd);
            MemorySegment y = arena.allocate(4L * w.outFeatures());
            m.multiply(w, x, 1, y, false);
            m.multiply(w, x, 1, y, true);
            assertThat(m.activationQuantizations()).isEqualTo(2);
        }
    }

    private static PackedWeights weights(Arena arena, GgmlType type, int out, int in, Random rnd) {
        return PackedWeights.prepare(type, RandomWeights.create(arena, type, out, in, rnd), out, in, arena);
    }

    private static MemorySegment input(Arena arena, Random rnd, int tokens, int in) {
        MemorySegment x = arena.allocate(4L * tokens * in, 64);
        for (long i = 0; i < (long) tokens * in; i++) {
            x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextGaussian());
        }
        return x;
    }

    /** What a new Matmul of the same kind computes for {@code w · x}. */
    private static float[] fresh(KernelPool pool, int mode, PackedWeights w, MemorySegment x, int tokens, Arena arena) {
        MemorySegment y = arena.allocate(4L * tokens * w.outFeatures());
        MatmulTest.matmul(pool, mode, Activations.Q8).multiply(w, x, tokens, y);
        return y.toArray(ValueLayout.JAVA_FLOAT);
    }
}
