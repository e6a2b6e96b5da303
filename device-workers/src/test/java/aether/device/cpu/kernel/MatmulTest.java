package aether.device.cpu.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
 * Every weight type × kernel path (vector/scalar × float/Q8 activations) against a float64 reference on fresh random
 * weights and activations (the seed is in every failure message), at shapes that reach every tail: odd block counts
 * (the 2-block unroll), a column count past {@link Matmul#K_BLOCK}, row counts that leave partial row blocks and odd
 * rows, 1–3 tokens (GEMV) and 4, 7 and 19 tokens (GEMM: partial 16-token groups, one and two of them), on 1 and 2
 * threads.
 *
 * <p>Error bounds, with u = 2⁻²⁴ and S = Σ|w_i·x_i| over one output:
 * <ul>
 *   <li>float activations (all types): |y − y₆₄| ≤ (cols + 16)·u·S. Each product passes through at most that many
 *       f32 roundings in any of our summation orders (sequential scalar, 8-lane blocked, K-blocked GEMM), and the
 *       dequantized weight values are exact in f32, so this is a worst-case bound, not a fitted one.</li>
 *   <li>Q8 activations (quantized types): against the float64 dot with the activations replaced by their ggml Q8_0
 *       values, |y − y₆₄| ≤ (cols/32 + 16)·u·S_q — block sums are exact integers, only the per-block scaling and the
 *       sum over blocks round. Against the unquantized activations the extra error is at most
 *       Σ_blocks (d_x/2)·Σ|w| (half a quantization step per element), also checked.</li>
 *   <li>Q8_K activations (Q4_K, Q5_K, Q6_K on the int8 path): the same two bounds with ggml's Q8_K values (blocks
 *       of 256, f32 scale max/127) in place of Q8_0's, and with S_q summing per element the magnitudes of the terms
 *       the kernel adds separately: for Q4_K/Q5_K the scaled quant d·sc·q and the min dmin·m, bounded by
 *       |w| + 2·|dmin·m|, so a weight near zero made of two large cancelling parts still gets their rounding; for
 *       Q4_0 (the planar kernel adds d·q and −8·d apart) likewise |w| + 16·|d|.</li>
 * </ul>
 */
class MatmulTest {
    private static final double U = 0x1p-24;
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

    /** The vector widths this machine runs: 256 always, 512 too where the preferred species is that wide (AVX-512). */
    static int[] widths() {
        return VectorSupport.wideAvailable() ? new int[] {256, 512} : new int[] {256};
    }

    /** Every way to run: the vector kernels at each width, then the scalar references (width 0). */
    static int[] modes() {
        int[] w = widths();
        int[] m = java.util.Arrays.copyOf(w, w.length + 1);
        return m;   // last entry 0: scalar
    }

    static Matmul matmul(KernelPool pool, int mode, Activations activations) {
        return mode == 0 ? new Matmul(pool, false, activations, 256) : new Matmul(pool, true, activations, mode);
    }

    static Stream<Arguments> variants() {
        List<Arguments> cases = new ArrayList<>();
        for (GgmlType type : Matmul.SUPPORTED) {
            for (int mode : modes()) {
                boolean vector = mode != 0;
                int bits = vector ? mode : 256;
                cases.add(Arguments.of(type, vector, Activations.FLOAT, bits));
                if (Matmul.Q8_ACTIVATION_TYPES.contains(type)) {
                    cases.add(Arguments.of(type, vector, Activations.Q8, bits));
                }
                if (Matmul.Q8_BY_DEFAULT.contains(type)) {
                    cases.add(Arguments.of(type, vector, Activations.AUTO, bits));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} vector={1} activations={2} bits={3}")
    @MethodSource("variants")
    @Timeout(240)
    void shouldMatchFloat64ReferenceAtEveryTail(GgmlType type, boolean vector, Activations activations, int bits) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int[] ins = type.blockSize() == 256 ? new int[] {256, 768, 4352}
                : type.isQuantized() ? new int[] {32, 96, 256, 4128} : new int[] {1, 7, 13, 207, 4100};
        int[] outs = {1, 3, 7, 64, 257};
        int[] tokenCounts = {1, 2, 3, 4, 7, 19};   // 19: two 16-token groups of the GEMM, the second partial
        try (Arena arena = Arena.ofShared()) {
            for (int in : ins) {
                for (int out : outs) {
                    MemorySegment w = RandomWeights.create(arena, type, out, in, rnd);
                    double[][] wd = new double[out][];
                    for (int r = 0; r < out; r++) {
                        wd[r] = RandomWeights.row(type, w, r, in);
                    }
                    for (int tokens : tokenCounts) {
                        float[][] xs = activations(rnd, tokens, in);
                        MemorySegment x = arena.allocate((long) tokens * in * 4 + 1, 16).asSlice(1, (long) tokens * in * 4);
                        for (int t = 0; t < tokens; t++) {
                            MemorySegment.copy(xs[t], 0, x, ValueLayout.JAVA_FLOAT_UNALIGNED, (long) t * in * 4, in);
                        }
                        for (KernelPool pool : new KernelPool[] {pool1, pool2}) {
                            MemorySegment y = arena.allocate((long) tokens * out * 4);
                            y.fill((byte) 0x7f);   // garbage: every output must be written
                            new Matmul(pool, vector, activations, bits).multiply(type, w, out, in, x, tokens, y);
                            // Q8_0 decodes with Q8 activations through the multi-row kernels below PLANAR_GEMM_MIN_TOKENS
                            boolean q8 = quantizesActivations(type, activations) && (!vector || tokens < Matmul.GEMM_MIN_TOKENS
                                    || type == GgmlType.Q8_0 && tokens < Matmul.PLANAR_GEMM_MIN_TOKENS);
                            String where = "%s vector=%s bits=%d act=%s in=%d out=%d tokens=%d threads=%d seed=%d"
                                    .formatted(type, vector, bits, activations, in, out, tokens, pool.threads(), seed);
                            check(type, w, wd, xs, y, q8, where);
                        }
                    }
                }
            }
        }
    }

    private static boolean quantizesActivations(GgmlType type, Activations activations) {
        return switch (activations) {
            case FLOAT -> false;
            case Q8 -> Matmul.Q8_ACTIVATION_TYPES.contains(type);
            case AUTO -> Matmul.Q8_BY_DEFAULT.contains(type);
        };
    }

    static Stream<Arguments> packedVariants() {
        List<Arguments> cases = new ArrayList<>();
        for (GgmlType type : new GgmlType[] {GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K}) {
            for (int mode : modes()) {
                cases.add(Arguments.of(type, mode != 0, mode == 0 ? 256 : mode));
            }
        }
        return cases.stream();
    }

    /**
     * {@link PackedWeights#prepare}: Q4_0 is repacked ({@code Q4_0_PLANAR}, decode always on Q8 activations, prefill
     * from the source blocks), other types are wrapped and multiply exactly as the ggml-layout call with the default
     * activations. Block counts 1, 3, 8 and 129 reach the padding to 8 blocks and the odd last pair.
     */
    @ParameterizedTest(name = "{0} vector={1} bits={2}")
    @MethodSource("packedVariants")
    @Timeout(240)
    void shouldMatchFloat64ReferenceWithPreparedWeights(GgmlType type, boolean vector, int bits) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int[] ins = type.blockSize() == 256 ? new int[] {256, 768} : new int[] {32, 96, 256, 4128};
        try (Arena arena = Arena.ofShared()) {
            for (int in : ins) {
                for (int out : new int[] {1, 3, 7, 64, 257}) {
                    MemorySegment w = RandomWeights.create(arena, type, out, in, rnd);
                    PackedWeights pw = PackedWeights.prepare(type, w, out, in, arena);
                    assertThat(pw.layout()).isEqualTo(type == GgmlType.Q4_0 ? PackedWeights.Layout.Q4_0_PLANAR : PackedWeights.Layout.GGUF);
                    if (type == GgmlType.Q4_0) {
                        assertThat(pw.packedBytes()).isEqualTo(18L * ((in / 32 + 7) / 8 * 8) * out);
                    }
                    double[][] wd = new double[out][];
                    for (int r = 0; r < out; r++) {
                        wd[r] = RandomWeights.row(type, w, r, in);
                    }
                    for (int tokens : new int[] {1, 2, 3, 4, 7, 19}) {
                        float[][] xs = activations(rnd, tokens, in);
                        MemorySegment x = arena.allocate((long) tokens * in * 4 + 1, 16).asSlice(1, (long) tokens * in * 4);
                        for (int t = 0; t < tokens; t++) {
                            MemorySegment.copy(xs[t], 0, x, ValueLayout.JAVA_FLOAT_UNALIGNED, (long) t * in * 4, in);
                        }
                        for (KernelPool pool : new KernelPool[] {pool1, pool2}) {
                            MemorySegment y = arena.allocate((long) tokens * out * 4);
                            y.fill((byte) 0x7f);
                            new Matmul(pool, vector, Matmul.DEFAULT_ACTIVATIONS, bits).multiply(pw, x, tokens, y);
                            boolean decode = tokens < Matmul.GEMM_MIN_TOKENS;
                            boolean q8 = type == GgmlType.Q4_0 ? decode || (vector && tokens < Matmul.PLANAR_GEMM_MIN_TOKENS)
                                    : quantizesActivations(type, Matmul.DEFAULT_ACTIVATIONS) && (!vector || decode
                                            || type == GgmlType.Q8_0 && tokens < Matmul.PLANAR_GEMM_MIN_TOKENS);
                            String where = "prepared %s vector=%s bits=%d in=%d out=%d tokens=%d threads=%d seed=%d"
                                    .formatted(type, vector, bits, in, out, tokens, pool.threads(), seed);
                            check(type, w, wd, xs, y, q8, where);
                        }
                    }
                }
            }
        }
    }

    /**
     * With the vector module, repacked Q4_0 never reads its ggml-layout source again (the model can drop those pages):
     * the source's arena is closed after {@code prepare}, and prefill (from the planar copy) still gives the same
     * floats, bit for bit, as the GEMM over the ggml layout; decode runs on the planar int16 kernel.
     */
    @Test
    void shouldMultiplyRepackedQ4_0WithoutReadingItsSourceAndPrefillAsTheGgufLayoutBitForBit() {
        org.junit.jupiter.api.Assumptions.assumeTrue(VectorSupport.available(), "no vector module");
        Random rnd = new Random(7);
        try (Arena arena = Arena.ofShared()) {
            for (int in : new int[] {32, 96, 544, 4128}) {   // 1, 3, 17 (K_BLOCK + 1 odd block), 129 blocks
                int out = 67;
                Arena sourceArena = Arena.ofShared();
                MemorySegment w = RandomWeights.create(sourceArena, GgmlType.Q4_0, out, in, rnd);
                MemorySegment ggml = arena.allocate(w.byteSize(), 64).copyFrom(w);
                PackedWeights pw = PackedWeights.prepare(GgmlType.Q4_0, w, out, in, arena);
                assertThat(pw.readsSource()).isFalse();
                sourceArena.close();   // any read of the source now throws
                for (int tokens : new int[] {1, 3, 4, 19, 64}) {
                    float[][] xs = activations(rnd, tokens, in);
                    MemorySegment x = arena.allocate((long) tokens * in * 4, 16);
                    for (int t = 0; t < tokens; t++) {
                        MemorySegment.copy(xs[t], 0, x, ValueLayout.JAVA_FLOAT_UNALIGNED, (long) t * in * 4, in);
                    }
                    for (KernelPool pool : new KernelPool[] {pool1, pool2}) {
                        MemorySegment y = arena.allocate((long) tokens * out * 4);
                        new Matmul(pool, true, Matmul.DEFAULT_ACTIVATIONS).multiply(pw, x, tokens, y);
                        String where = "in=%d tokens=%d threads=%d".formatted(in, tokens, pool.threads());
                        if (tokens >= Matmul.PLANAR_GEMM_MIN_TOKENS) {   // below it the multi-row Q8 kernels run
                            MemorySegment expected = arena.allocate((long) tokens * out * 4);
                            new Matmul(pool, true, Activations.FLOAT).multiply(GgmlType.Q4_0, ggml, out, in, x, tokens,
                                    expected);
                            assertThat(y.toArray(ValueLayout.JAVA_FLOAT)).as(where)
                                    .containsExactly(expected.toArray(ValueLayout.JAVA_FLOAT));
                        } else {
                            double[][] wd = new double[out][];
                            for (int r = 0; r < out; r++) {
                                wd[r] = RandomWeights.row(GgmlType.Q4_0, ggml, r, in);
                            }
                            check(GgmlType.Q4_0, ggml, wd, xs, y, true, where);
                        }
                    }
                }
            }
        }
    }

    @Test
    void shouldKeepGgufLayoutForQ4_0WithANonFiniteScaleAndStillMultiply() {
        try (Arena arena = Arena.ofShared()) {
            int in = 64;
            MemorySegment w = RandomWeights.create(arena, GgmlType.Q4_0, 3, in, new Random(5));
            w.set(ValueLayout.JAVA_SHORT_UNALIGNED, 18L * 2 + 18, (short) 0x7c00);   // row 1, block 0: d = +Inf
            PackedWeights pw = PackedWeights.prepare(GgmlType.Q4_0, w, 3, in, arena);
            assertThat(pw.layout()).isEqualTo(PackedWeights.Layout.GGUF);
            assertThat(pw.packedBytes()).isZero();
            MemorySegment x = arena.allocate(in * 4L);
            for (int i = 0; i < in; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, 0.25f + i % 5);
            }
            for (boolean vector : new boolean[] {true, false}) {
                MemorySegment y = arena.allocate(3 * 4);
                MemorySegment want = arena.allocate(3 * 4);
                Matmul mm = new Matmul(pool2, vector, Activations.FLOAT);
                mm.multiply(pw, x, 1, y);
                mm.multiply(GgmlType.Q4_0, w, 3, in, x, 1, want);
                for (int r = 0; r < 3; r++) {
                    assertThat(Float.floatToIntBits(y.getAtIndex(ValueLayout.JAVA_FLOAT, r))).as("row %d vector=%s", r, vector)
                            .isEqualTo(Float.floatToIntBits(want.getAtIndex(ValueLayout.JAVA_FLOAT, r)));
                }
                assertThat(Float.isFinite(y.getAtIndex(ValueLayout.JAVA_FLOAT, 1))).isFalse();
            }
        }
    }

    private static float[][] activations(Random rnd, int tokens, int in) {
        float[][] xs = new float[tokens][in];
        for (int t = 0; t < tokens; t++) {
            float scale = (float) Math.pow(10, t % 3 - 1);   // 0.1, 1, 10: scale-independence of the Q8 path
            for (int i = 0; i < in; i++) {
                xs[t][i] = (rnd.nextFloat() * 2 - 1) * scale;
            }
        }
        return xs;
    }

    static void check(GgmlType type, MemorySegment w, double[][] wd, float[][] xs, MemorySegment y, boolean q8,
                              String where) {
        int out = wd.length;
        boolean q8k = q8 && Matmul.Q8_K_ACTIVATION_TYPES.contains(type);
        int qb = q8k ? 256 : 32;
        double[][] wm = new double[out][];
        for (int r = 0; r < out; r++) {
            wm[r] = RandomWeights.magnitudes(type, w, r, wd[r]);
        }
        for (int t = 0; t < xs.length; t++) {
            int in = xs[t].length;
            double[] xq = !q8 ? null : q8k ? RandomWeights.q8KValues(xs[t]) : RandomWeights.q8Values(xs[t]);
            for (int r = 0; r < out; r++) {
                double got = y.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * out + r);
                double exact = 0, s = 0, quantized = 0, sq = 0, qerr = 0;
                for (int i = 0; i < in; i++) {
                    exact += wd[r][i] * xs[t][i];
                    s += Math.abs(wd[r][i] * xs[t][i]);
                }
                if (!q8) {
                    double tol = (in + 16) * U * s + Double.MIN_NORMAL;
                    assertThat(Math.abs(got - exact)).as("%s row=%d token=%d got=%s exact=%s", where, r, t, got, exact)
                            .isLessThanOrEqualTo(tol);
                    continue;
                }
                for (int b = 0; b < in / qb; b++) {
                    double dx = 0, wabs = 0;
                    for (int j = b * qb; j < b * qb + qb; j++) {
                        quantized += wd[r][j] * xq[j];
                        sq += Math.abs(wm[r][j] * xq[j]);
                        dx = Math.max(dx, Math.abs(xs[t][j]) / 127.0);
                        wabs += Math.abs(wd[r][j]);
                    }
                    qerr += dx * 0.5 * 1.001 * wabs;   // 1.001: Q8_0's d_x is stored rounded to f16 (relative error ≤ 2⁻¹¹)
                }
                double tol = (in / 32 + 16) * U * sq + Double.MIN_NORMAL;
                assertThat(Math.abs(got - quantized)).as("%s row=%d token=%d got=%s q8-exact=%s", where, r, t, got, quantized)
                        .isLessThanOrEqualTo(tol);
                assertThat(Math.abs(got - exact)).as("%s row=%d token=%d vs unquantized activations", where, r, t)
                        .isLessThanOrEqualTo(qerr + tol + (in + 16) * U * s);
            }
        }
    }

    @Test
    void shouldWidenEveryHalfFloatBitPatternExactly() {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment halves = arena.allocate(65536 * 2 + 1).asSlice(1, 65536 * 2);
            for (int i = 0; i < 65536; i++) {
                halves.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) i);
            }
            MemorySegment f16 = arena.allocate(65536 * 4);
            float[] bf16 = new float[65536];
            FloatKernels.dequantF16(halves, 0, 65536, f16, 0);
            FloatKernels.dequantBF16(halves, 0, 65536, bf16, 0);
            for (int i = 0; i < 65536; i++) {
                float want = Float.float16ToFloat((short) i);
                if (Float.isNaN(want)) {   // NaN in, NaN out; the payload's quiet bit is not part of the contract
                    assertThat(f16.getAtIndex(ValueLayout.JAVA_FLOAT, i)).as("f16 0x%04x", i).isNaN();
                } else {
                    assertThat(f16.getAtIndex(ValueLayout.JAVA_INT, i)).as("f16 0x%04x", i)
                            .isEqualTo(Float.floatToRawIntBits(want));
                }
                assertThat(Float.floatToRawIntBits(bf16[i])).as("bf16 0x%04x", i).isEqualTo(i << 16);
            }
        }
    }

    @Test
    void shouldKeepInfNaNAndExtremeHalfWeightsOnEveryPath() {
        // rows: +Inf, NaN, -Inf, +Inf and -Inf (NaN), ±65504 and subnormals, a -Inf half-NaN payload mix, finite
        short[][] specials = {{0x7c00}, {0x7e01}, {(short) 0xfc00}, {0x7c00, (short) 0xfc00},
                {0x7bff, (short) 0xfbff, 0x0001, (short) 0x8001, 0x03ff}, {(short) 0xfe00, 0x7c01}, {}};
        Random rnd = new Random(11);
        try (Arena arena = Arena.ofShared()) {
            for (int in : new int[] {7, 40, 4100}) {
                int out = specials.length;
                MemorySegment w = arena.allocate((long) out * in * 2);
                float[][] wf = new float[out][in];
                for (int r = 0; r < out; r++) {
                    for (int i = 0; i < in; i++) {
                        w.setAtIndex(ValueLayout.JAVA_SHORT, (long) r * in + i, Float.floatToFloat16(rnd.nextFloat() - 0.5f));
                    }
                    for (short h : specials[r]) {   // at a random column: the 32-wide loop, the 8-wide loop or the tail
                        w.setAtIndex(ValueLayout.JAVA_SHORT, (long) r * in + rnd.nextInt(in), h);
                    }
                    for (int i = 0; i < in; i++) {
                        wf[r][i] = Float.float16ToFloat(w.getAtIndex(ValueLayout.JAVA_SHORT, (long) r * in + i));
                    }
                }
                for (int tokens : new int[] {1, 2, 5}) {
                    float[][] xs = activations(rnd, tokens, in);
                    MemorySegment x = arena.allocate((long) tokens * in * 4);
                    for (int t = 0; t < tokens; t++) {
                        MemorySegment.copy(xs[t], 0, x, ValueLayout.JAVA_FLOAT, (long) t * in * 4, in);
                    }
                    for (int vector : modes()) {   // each vector width, then scalar (0)
                        MemorySegment y = arena.allocate((long) tokens * out * 4);
                        matmul(pool2, vector, Activations.FLOAT).multiply(GgmlType.F16, w, out, in, x, tokens, y);
                        for (int t = 0; t < tokens; t++) {
                            for (int r = 0; r < out; r++) {
                                double exact = 0, s = 0;
                                for (int i = 0; i < in; i++) {
                                    exact += (double) wf[r][i] * xs[t][i];
                                    s += Math.abs((double) wf[r][i] * xs[t][i]);
                                }
                                float got = y.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * out + r);
                                String where = "in=%d tokens=%d vector=%s row=%d token=%d got=%s exact=%s"
                                        .formatted(in, tokens, vector, r, t, got, exact);
                                if (Double.isNaN(exact)) {
                                    assertThat(got).as(where).isNaN();
                                } else if (Double.isInfinite(exact)) {
                                    assertThat(got).as(where).isEqualTo((float) exact);
                                } else {
                                    assertThat(Math.abs(got - exact)).as(where).isLessThanOrEqualTo((in + 16) * U * s);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void shouldPropagateNaNActivationsOnEveryPath() {
        try (Arena arena = Arena.ofShared()) {
            for (GgmlType type : Matmul.SUPPORTED) {
                int in = type.blockSize() == 256 ? 256 : 64;
                MemorySegment w = RandomWeights.create(arena, type, 3, in, new Random(1));
                MemorySegment x = arena.allocate(in * 4L);
                x.setAtIndex(ValueLayout.JAVA_FLOAT, 17, Float.NaN);
                for (int vector : modes()) {   // each vector width, then scalar (0)
                    for (Activations act : Activations.values()) {
                        MemorySegment y = arena.allocate(3 * 4);
                        matmul(pool2, vector, act).multiply(type, w, 3, in, x, 1, y);
                        for (int r = 0; r < 3; r++) {
                            assertThat(y.getAtIndex(ValueLayout.JAVA_FLOAT, r)).as("%s %s %s", type, vector, act).isNaN();
                        }
                    }
                }
            }
        }
    }

    @Test
    void shouldWriteExactlyItsOutputsAndHandleEmptyShapes() {
        try (Arena arena = Arena.ofShared()) {
            for (boolean vector : new boolean[] {true, false}) {
                Matmul mm = new Matmul(pool2, vector, Activations.FLOAT);
                for (int tokens : new int[] {1, 5}) {
                    MemorySegment w = RandomWeights.create(arena, GgmlType.Q4_0, 37, 64, new Random(3));
                    MemorySegment x = arena.allocate(tokens * 64L * 4);
                    MemorySegment y = arena.allocate((tokens * 37L + 16) * 4);
                    y.fill((byte) 0x55);
                    mm.multiply(GgmlType.Q4_0, w, 37, 64, x, tokens, y);   // x is zero: every output is 0
                    for (long i = 0; i < tokens * 37L; i++) {
                        assertThat(y.getAtIndex(ValueLayout.JAVA_FLOAT, i)).as("output %d", i).isZero();
                    }
                    for (long i = tokens * 37L; i < tokens * 37L + 16; i++) {
                        assertThat(y.getAtIndex(ValueLayout.JAVA_INT, i)).as("past the end %d", i).isEqualTo(0x55555555);
                    }
                }
                MemorySegment y = arena.allocate(3 * 4);
                y.fill((byte) 0x55);
                mm.multiply(GgmlType.F32, MemorySegment.NULL, 3, 0, MemorySegment.NULL, 1, y);   // in = 0: y = 0
                for (int i = 0; i < 3; i++) {
                    assertThat(y.getAtIndex(ValueLayout.JAVA_FLOAT, i)).isZero();
                }
                mm.multiply(GgmlType.Q4_0, MemorySegment.NULL, 0, 64, MemorySegment.NULL, 0, MemorySegment.NULL);
            }
        }
    }

    @Test
    void shouldRejectBadShapesNamingWhatAndWhere() {
        Matmul mm = new Matmul(pool1);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment w = arena.allocate(GgmlType.Q4_0.bytesFor(64) * 4);
            MemorySegment x = arena.allocate(64 * 4 * 2);
            MemorySegment y = arena.allocate(4 * 4 * 2);
            assertThatThrownBy(() -> mm.multiply(GgmlType.IQ2_XXS, w, 4, 256, x, 1, y))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("IQ2_XXS");
            assertThatThrownBy(() -> mm.multiply(GgmlType.Q4_0, w, 4, 48, x, 1, y))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("block size 32");
            assertThatThrownBy(() -> mm.multiply(GgmlType.Q4_0, w, 5, 64, x, 1, y))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("weights").hasMessageContaining("[5 x 64]");
            assertThatThrownBy(() -> mm.multiply(GgmlType.Q4_0, w, 4, 64, x, 3, y))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("x f32 [3 x 64]");
            assertThatThrownBy(() -> mm.multiply(GgmlType.Q4_0, w, 4, 64, x, 2, arena.allocate(4 * 4)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("y f32 [2 x 4]");
        }
    }
}
