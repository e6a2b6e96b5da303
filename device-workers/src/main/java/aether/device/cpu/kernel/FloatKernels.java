package aether.device.cpu.kernel;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector dot and dequantize kernels for the float weight types F32, F16 and BF16. 256-bit shapes throughout: the
 * half-float and quant kernels widen 8 narrow lanes to 8 float lanes, which is one AVX2 instruction per step.
 */
final class FloatKernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private FloatKernels() {}

    static float dotF32(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        var acc2 = FloatVector.zero(F);
        var acc3 = FloatVector.zero(F);
        int i = 0;
        // four chains: FMA latency 4-5 cycles × 2 ports, and the weight stream is the bottleneck anyway
        for (int bound = cols - cols % 32; i < bound; i += 32) {
            long wo = wOff + 4L * i, xo = xOff + 4L * i;
            acc0 = FloatVector.fromMemorySegment(F, w, wo, LE).fma(FloatVector.fromMemorySegment(F, x, xo, LE), acc0);
            acc1 = FloatVector.fromMemorySegment(F, w, wo + 32, LE).fma(FloatVector.fromMemorySegment(F, x, xo + 32, LE), acc1);
            acc2 = FloatVector.fromMemorySegment(F, w, wo + 64, LE).fma(FloatVector.fromMemorySegment(F, x, xo + 64, LE), acc2);
            acc3 = FloatVector.fromMemorySegment(F, w, wo + 96, LE).fma(FloatVector.fromMemorySegment(F, x, xo + 96, LE), acc3);
        }
        for (int bound = cols - cols % 8; i < bound; i += 8) {
            acc0 = FloatVector.fromMemorySegment(F, w, wOff + 4L * i, LE)
                    .fma(FloatVector.fromMemorySegment(F, x, xOff + 4L * i, LE), acc0);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        FloatVector lanes = acc0.add(acc1).add(acc2.add(acc3));
        lanes = lanes.add(lanes.rearrange(LaneSums.HALVES));
        lanes = lanes.add(lanes.rearrange(LaneSums.QUARTERS));
        float sum = lanes.add(lanes.rearrange(LaneSums.PAIRS)).lane(0);
        for (; i < cols; i++) {
            sum += w.get(BlockLayouts.F32, wOff + 4L * i) * x.get(BlockLayouts.F32, xOff + 4L * i);
        }
        return sum;
    }

    // Half floats: the Vector API has no half-float conversion, so the kernels use the bit trick — shift the 15
    // magnitude bits into float position and scale by 2^112, exact for normal and subnormal halves. dequantF16
    // patches Inf/NaN (exponent 31) with a blend and ORs the sign back (~9 ops per 8 halves); the decode dot keeps
    // the sign in place and moves the Inf/NaN check out of the loop (4 ops per 8 halves, see dotF16).

    static float dotBF16(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        int i = 0;
        for (int bound = cols - cols % 16; i < bound; i += 16) {
            var f0 = ShortVector.fromMemorySegment(S128, w, wOff + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0)
                    .reinterpretAsInts().lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            var f1 = ShortVector.fromMemorySegment(S128, w, wOff + 2L * i + 16, LE).convertShape(VectorOperators.S2I, I, 0)
                    .reinterpretAsInts().lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            acc0 = f0.fma(FloatVector.fromMemorySegment(F, x, xOff + 4L * i, LE), acc0);
            acc1 = f1.fma(FloatVector.fromMemorySegment(F, x, xOff + 4L * i + 32, LE), acc1);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        FloatVector lanes = acc0.add(acc1);
        lanes = lanes.add(lanes.rearrange(LaneSums.HALVES));
        lanes = lanes.add(lanes.rearrange(LaneSums.QUARTERS));
        float sum = lanes.add(lanes.rearrange(LaneSums.PAIRS)).lane(0);
        for (; i < cols; i++) {
            sum += Float.intBitsToFloat(w.get(BlockLayouts.I16, wOff + 2L * i) << 16) * x.get(BlockLayouts.F32, xOff + 4L * i);
        }
        return sum;
    }

    /**
     * Widens {@code n} halves at {@code w[wOff]} to floats at {@code dst[dstOff]}. A plain loop over the
     * {@code Float.float16ToFloat} intrinsic: C2 vectorizes it to vcvtph2ps, exact for every half including Inf/NaN,
     * ~0.5 ns per element into a segment; the Vector API bit trick with an Inf/NaN blend that was here measured
     * ~10 ns per element (its mask blend is not intrinsified on this path).
     */
    static void dequantF16(MemorySegment w, long wOff, int n, MemorySegment dst, long dstOff) {
        for (int i = 0; i < n; i++) {
            dst.set(BlockLayouts.F32, dstOff + 4L * i, Float.float16ToFloat(w.get(BlockLayouts.I16, wOff + 2L * i)));
        }
    }

    /** {@link #dequantF16} into a heap array, the GEMM's scratch: ~0.1 ns per element (vectorized by C2). */
    static void dequantF16(MemorySegment w, long wOff, int n, float[] dst, int dstOff) {
        for (int i = 0; i < n; i++) {
            dst[dstOff + i] = Float.float16ToFloat(w.get(BlockLayouts.I16, wOff + 2L * i));
        }
    }

    static void dequantBF16(MemorySegment w, long wOff, int n, float[] dst, int dstOff) {
        int i = 0;
        for (int bound = n - n % 8; i < bound; i += 8) {
            ShortVector.fromMemorySegment(S128, w, wOff + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0).reinterpretAsInts()
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, dstOff + i);
        }
        for (; i < n; i++) {
            dst[dstOff + i] = Float.intBitsToFloat(w.get(BlockLayouts.I16, wOff + 2L * i) << 16);
        }
    }

    /** {@code y[t][r] = dotF32(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsF32(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotF32(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }

    /** {@code y[t][r] = dotBF16(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsBF16(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotBF16(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }

    /**
     * Half-float dot with four accumulator chains and a 4-op widening, exact for every finite half: the sign-extended
     * half shifted left by 13 has the sign in bit 31 and exponent+mantissa in bits 27..13; masking bits 30..28 leaves a
     * float whose value times 2^112 is the half's (normal halves rebias, subnormal halves normalize, both exactly).
     * Infinite and NaN halves (exponent 31) would come out finite, so the kernel tracks the largest exponent field
     * (bits 27..23 of the shifted half, a non-negative int) with one mask and one signed max per 8 halves and redoes a
     * row that holds one with the scalar reference. Signed, not unsigned: C2 (JDK 25) does not intrinsify an unsigned
     * max reduction, and its fallback allocated 64 bytes and cost ~1 µs per row (the F16 engine decode ran at half
     * its bandwidth because of it).
     */
    static float dotF16(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        var acc2 = FloatVector.zero(F);
        var acc3 = FloatVector.zero(F);
        var hi = IntVector.zero(I);
        int i = 0;
        for (int bound = cols - cols % 32; i < bound; i += 32) {
            long wo = wOff + 2L * i, xo = xOff + 4L * i;
            var s0 = ((IntVector) ShortVector.fromMemorySegment(S128, w, wo + 0, LE).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 13);
            hi = hi.max(s0.and(0x0F800000));
            acc0 = s0.and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(FloatVector.fromMemorySegment(F, x, xo + 0, LE), acc0);
            var s1 = ((IntVector) ShortVector.fromMemorySegment(S128, w, wo + 16, LE).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 13);
            hi = hi.max(s1.and(0x0F800000));
            acc1 = s1.and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(FloatVector.fromMemorySegment(F, x, xo + 32, LE), acc1);
            var s2 = ((IntVector) ShortVector.fromMemorySegment(S128, w, wo + 32, LE).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 13);
            hi = hi.max(s2.and(0x0F800000));
            acc2 = s2.and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(FloatVector.fromMemorySegment(F, x, xo + 64, LE), acc2);
            var s3 = ((IntVector) ShortVector.fromMemorySegment(S128, w, wo + 48, LE).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 13);
            hi = hi.max(s3.and(0x0F800000));
            acc3 = s3.and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(FloatVector.fromMemorySegment(F, x, xo + 96, LE), acc3);
        }
        for (int bound = cols - cols % 8; i < bound; i += 8) {
            var s0 = ((IntVector) ShortVector.fromMemorySegment(S128, w, wOff + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 13);
            hi = hi.max(s0.and(0x0F800000));
            acc0 = s0.and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(FloatVector.fromMemorySegment(F, x, xOff + 4L * i, LE), acc0);
        }
        if (hi.reduceLanes(VectorOperators.MAX) == 0x0F800000) {
            return ScalarDot.f16(w, wOff, x, xOff, cols);   // an Inf or NaN weight: the reference's exact semantics
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        FloatVector lanes = acc0.add(acc1).add(acc2.add(acc3));
        lanes = lanes.add(lanes.rearrange(LaneSums.HALVES));
        lanes = lanes.add(lanes.rearrange(LaneSums.QUARTERS));
        float sum = lanes.add(lanes.rearrange(LaneSums.PAIRS)).lane(0);
        for (; i < cols; i++) {
            sum += Float.float16ToFloat(w.get(BlockLayouts.I16, wOff + 2L * i)) * x.get(BlockLayouts.F32, xOff + 4L * i);
        }
        return sum;
    }

    static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;

    /**
     * {@link #dotF16} in 512-bit lanes (AVX-512): 16 halves per widening (vpmovsxwd zmm) and per FMA, half the vector
     * µops per weight byte; the same exact widening and Inf/NaN fallback. Raced against {@link #dotF16} in one JVM
     * ([1,4096]×[4096,14336], KernelRace, EPYC Zen 4, load ~4): 1.23× on one thread (0.99 of the probe's bandwidth,
     * from 0.81), 1.44× on two (0.88 from 0.61).
     */
    static float dotF16Wide(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc0 = FloatVector.zero(F512);
        var acc1 = FloatVector.zero(F512);
        var acc2 = FloatVector.zero(F512);
        var acc3 = FloatVector.zero(F512);
        var hi = IntVector.zero(I512);
        int i = 0;
        for (int bound = cols - cols % 64; i < bound; i += 64) {
            long wo = wOff + 2L * i, xo = xOff + 4L * i;
            var s0 = ((IntVector) ShortVector.fromMemorySegment(S256, w, wo + 0, LE).convertShape(VectorOperators.S2I, I512, 0))
                    .lanewise(VectorOperators.LSHL, 13);
            hi = hi.max(s0.and(0x0F800000));
            acc0 = s0.and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(FloatVector.fromMemorySegment(F512, x, xo + 0, LE), acc0);
            var s1 = ((IntVector) ShortVector.fromMemorySegment(S256, w, wo + 32, LE).convertShape(VectorOperators.S2I, I512, 0))
                    .lanewise(VectorOperators.LSHL, 13);
            hi = hi.max(s1.and(0x0F800000));
            acc1 = s1.and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(FloatVector.fromMemorySegment(F512, x, xo + 64, LE), acc1);
            var s2 = ((IntVector) ShortVector.fromMemorySegment(S256, w, wo + 64, LE).convertShape(VectorOperators.S2I, I512, 0))
                    .lanewise(VectorOperators.LSHL, 13);
            hi = hi.max(s2.and(0x0F800000));
            acc2 = s2.and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(FloatVector.fromMemorySegment(F512, x, xo + 128, LE), acc2);
            var s3 = ((IntVector) ShortVector.fromMemorySegment(S256, w, wo + 96, LE).convertShape(VectorOperators.S2I, I512, 0))
                    .lanewise(VectorOperators.LSHL, 13);
            hi = hi.max(s3.and(0x0F800000));
            acc3 = s3.and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(FloatVector.fromMemorySegment(F512, x, xo + 192, LE), acc3);
        }
        for (int bound = cols - cols % 16; i < bound; i += 16) {
            var s0 = ((IntVector) ShortVector.fromMemorySegment(S256, w, wOff + 2L * i, LE).convertShape(VectorOperators.S2I, I512, 0))
                    .lanewise(VectorOperators.LSHL, 13);
            hi = hi.max(s0.and(0x0F800000));
            acc0 = s0.and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f).fma(FloatVector.fromMemorySegment(F512, x, xOff + 4L * i, LE), acc0);
        }
        if (hi.reduceLanes(VectorOperators.MAX) == 0x0F800000) {
            return ScalarDot.f16(w, wOff, x, xOff, cols);   // an Inf or NaN weight: the reference's exact semantics
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        FloatVector lanes = acc0.add(acc1).add(acc2.add(acc3));
        lanes = lanes.add(lanes.rearrange(LaneSums.HALVES_512));
        lanes = lanes.add(lanes.rearrange(LaneSums.QUARTERS_512));
        lanes = lanes.add(lanes.rearrange(LaneSums.EIGHTHS_512));
        float sum = lanes.add(lanes.rearrange(LaneSums.PAIRS_512)).lane(0);
        for (; i < cols; i++) {
            sum += Float.float16ToFloat(w.get(BlockLayouts.I16, wOff + 2L * i)) * x.get(BlockLayouts.F32, xOff + 4L * i);
        }
        return sum;
    }

    /**
     * {@code y[t][r] = dotF16(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit;
     * {@code wide} picks {@link #dotF16Wide}.
     */
    static void rowsF16(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride, boolean wide) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, wide ? dotF16Wide(w, r * rowBytes, x, t * xStride, cols)
                        : dotF16(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }
}
