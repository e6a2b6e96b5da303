package aether.scheduler.compile;

import aether.device.cpu.kernel.LaneSums;
import aether.device.cpu.kernel.VectorSupport;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The inner loops of paged attention over f32 and f16 cache rows: a query head's dot product with a key row, and a
 * value row scaled into the accumulator. Vector paths (256-bit, 8 floats) run when {@link
 * VectorSupport#enabledByDefault()} ({@code -Daether.vector=false} forces the scalar loops, which tests compare
 * with); heads whose size is not a multiple of 8 take the scalar loops.
 *
 * <p>F16 rows are widened with integer ops (magnitude bits shifted into float position and scaled by 2^112, exact for
 * normal and subnormal halves, sign OR-ed back); a group of 8 with an Inf or NaN half is redone by the scalar loop so
 * the results keep IEEE semantics.
 *
 * <p>No method here takes or returns a {@code Vector}: whether C2 inlines a helper depends on what it compiled first
 * (a helper already compiled on its own is not inlined into a larger caller), and a vector crossing a call that is
 * not inlined is boxed, ~100 bytes per 8 lanes. {@code VectorValuesStayInMethodsTest} holds every kernel to this.
 */
final class AttentionKernels {

    private static final boolean VECTOR = VectorSupport.enabledByDefault();
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> H = ShortVector.SPECIES_128;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final float TWO_POW_112 = 0x1p112f;

    private AttentionKernels() {}

    static boolean vectorFor(int n) {
        return VECTOR && n % 8 == 0;
    }

    /** {@code q · c[at .. at + 4n)} over f32 values. */
    static float dotF32(float[] q, MemorySegment c, long at, int n) {
        if (!vectorFor(n)) {
            float s = 0;
            for (int i = 0; i < n; i++) {
                s += q[i] * c.get(F32, at + 4L * i);
            }
            return s;
        }
        FloatVector acc = FloatVector.zero(F);
        for (int i = 0; i < n; i += 8) {
            acc = FloatVector.fromArray(F, q, i)
                    .fma(FloatVector.fromMemorySegment(F, c, at + 4L * i, ByteOrder.LITTLE_ENDIAN), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /** {@code q · c[at .. at + 2n)} over f16 values. */
    static float dotF16(float[] q, MemorySegment c, long at, int n) {
        if (!vectorFor(n)) {
            return dotF16Scalar(q, 0, c, at, n);
        }
        FloatVector acc = FloatVector.zero(F);
        float extra = 0;
        for (int i = 0; i < n; i += 8) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(H, c, at + 2L * i, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector mag = h.and(0x7fff);
            if (mag.compare(VectorOperators.GE, 0x7c00).anyTrue()) {
                extra += dotF16Scalar(q, i, c, at + 2L * i, 8);
                continue;
            }
            // widened here, not in a helper (see the class comment)
            FloatVector abs = mag.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(TWO_POW_112);
            FloatVector k = abs.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16))
                    .reinterpretAsFloats();
            acc = FloatVector.fromArray(F, q, i).fma(k, acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0) + extra;
    }

    private static float dotF16Scalar(float[] q, int q0, MemorySegment c, long at, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) {
            s += q[q0 + i] * Float.float16ToFloat(c.get(F16, at + 2L * i));
        }
        return s;
    }

    /** {@code o += w * c[at ..)} over f32 values. */
    static void axpyF32(float w, MemorySegment c, long at, float[] o) {
        int n = o.length;
        if (!vectorFor(n)) {
            for (int i = 0; i < n; i++) {
                o[i] += w * c.get(F32, at + 4L * i);
            }
            return;
        }
        FloatVector wv = FloatVector.broadcast(F, w);
        for (int i = 0; i < n; i += 8) {
            FloatVector.fromMemorySegment(F, c, at + 4L * i, ByteOrder.LITTLE_ENDIAN)
                    .fma(wv, FloatVector.fromArray(F, o, i)).intoArray(o, i);
        }
    }

    /** {@code o += w * c[at ..)} over f16 values. */
    static void axpyF16(float w, MemorySegment c, long at, float[] o) {
        int n = o.length;
        if (!vectorFor(n)) {
            axpyF16Scalar(w, c, at, o, 0, n);
            return;
        }
        FloatVector wv = FloatVector.broadcast(F, w);
        for (int i = 0; i < n; i += 8) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(H, c, at + 2L * i, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector mag = h.and(0x7fff);
            VectorMask<Integer> special = mag.compare(VectorOperators.GE, 0x7c00);
            if (special.anyTrue()) {
                axpyF16Scalar(w, c, at + 2L * i, o, i, 8);
                continue;
            }
            FloatVector abs = mag.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(TWO_POW_112);
            FloatVector v = abs.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16))
                    .reinterpretAsFloats();
            v.fma(wv, FloatVector.fromArray(F, o, i)).intoArray(o, i);
        }
    }

    private static void axpyF16Scalar(float w, MemorySegment c, long at, float[] o, int o0, int n) {
        for (int i = 0; i < n; i++) {
            o[o0 + i] += w * Float.float16ToFloat(c.get(F16, at + 2L * i));
        }
    }

    /**
     * {@code q · row[col0, col0 + n)} of a q8_0 row starting at byte {@code rowAt} (blocks of an f16 scale and 32
     * int8 quants): each block's quants are summed against q first and scaled once, as ggml's q8_0 dot does.
     */
    static float dotQ8_0(float[] q, MemorySegment c, long rowAt, int col0, int n) {
        float s = 0;
        int i = 0;
        while (i < n) {
            int col = col0 + i;
            long block = rowAt + (col >>> 5) * 34L;
            int len = Math.min(32 - (col & 31), n - i);
            long qs = block + 2 + (col & 31);
            float part = 0;
            for (int j = 0; j < len; j++) {
                part += q[i + j] * c.get(ValueLayout.JAVA_BYTE, qs + j);
            }
            s += part * Float.float16ToFloat(c.get(F16, block));
            i += len;
        }
        return s;
    }

    /** {@code o += w * row[col0, col0 + o.length)} of a q8_0 row (the block scale folded into w once per block). */
    static void axpyQ8_0(float w, MemorySegment c, long rowAt, int col0, float[] o) {
        int n = o.length;
        int i = 0;
        while (i < n) {
            int col = col0 + i;
            long block = rowAt + (col >>> 5) * 34L;
            int len = Math.min(32 - (col & 31), n - i);
            long qs = block + 2 + (col & 31);
            float wd = w * Float.float16ToFloat(c.get(F16, block));
            for (int j = 0; j < len; j++) {
                o[i + j] += wd * c.get(ValueLayout.JAVA_BYTE, qs + j);
            }
            i += len;
        }
    }

    /** The most f16 values {@link #widenF16Row} takes: one bit of its special-group mask per 8. */
    static final int MAX_WIDEN = 512;

    /**
     * Widens the f16 row {@code c[at .. at + 2n)} into {@code f[0, n)} once, so that the query heads sharing a KV head
     * (GQA) read it as floats instead of each converting it again. Groups of 8 holding an Inf or NaN half are not
     * widened; their bit in the returned mask is set, and {@link #dotWidened}/{@link #axpyWidened} redo them with the
     * scalar loop exactly as {@link #dotF16}/{@link #axpyF16} do. Requires {@link #vectorFor}(n) and n ≤ {@value
     * #MAX_WIDEN}.
     */
    static long widenF16Row(MemorySegment c, long at, int n, float[] f) {
        long special = 0;
        for (int i = 0; i < n; i += 8) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(H, c, at + 2L * i, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector mag = h.and(0x7fff);
            if (mag.compare(VectorOperators.GE, 0x7c00).anyTrue()) {
                special |= 1L << (i >>> 3);
                continue;
            }
            FloatVector abs = mag.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(TWO_POW_112);
            abs.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats()
                    .intoArray(f, i);
        }
        return special;
    }

    /**
     * {@link #dotF16} of {@code q[q0 .. q0 + n)} with a row that {@link #widenF16Row} widened into {@code f}: the same
     * fused multiply-adds in the same order and the same scalar redo of the special groups, so the same float bit for
     * bit.
     */
    static float dotWidened(float[] q, int q0, float[] f, long special, MemorySegment c, long at, int n) {
        FloatVector acc = FloatVector.zero(F);
        float extra = 0;
        for (int i = 0; i < n; i += 8) {
            if ((special >>> (i >>> 3) & 1) != 0) {
                extra += dotF16Scalar(q, q0 + i, c, at + 2L * i, 8);
                continue;
            }
            acc = FloatVector.fromArray(F, q, q0 + i).fma(FloatVector.fromArray(F, f, i), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0) + extra;
    }

    /** {@link #axpyF16} into {@code o[o0 .. o0 + n)} from a widened row: the same operations, bit for bit. */
    static void axpyWidened(float w, float[] f, long special, MemorySegment c, long at, float[] o, int o0, int n) {
        FloatVector wv = FloatVector.broadcast(F, w);
        for (int i = 0; i < n; i += 8) {
            if ((special >>> (i >>> 3) & 1) != 0) {
                axpyF16Scalar(w, c, at + 2L * i, o, o0 + i, 8);
                continue;
            }
            FloatVector.fromArray(F, f, i).fma(wv, FloatVector.fromArray(F, o, o0 + i)).intoArray(o, o0 + i);
        }
    }
}
