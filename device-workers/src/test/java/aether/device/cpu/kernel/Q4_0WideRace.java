package aether.device.cpu.kernel;

import aether.device.cpu.bench.MatmulBenchmark;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * One-core race of the planar Q4_0 decode kernels, one token, called directly and round-robin on the same [rows x cols]
 * matrix so that machine load hits all alike: the 256-bit multi-row kernel ({@link Q4_0BatchKernels#rowsPlanar}, what
 * decode ran before), the 512-bit one ({@link Q4_0BatchKernels#rowsPlanarWide}), and experimental forms kept here.
 * Prints each one's best and median pass (GB/s of planar weights) and its largest difference from the 256-bit output.
 * {@code scripts/jmh device-workers --main aether.device.cpu.kernel.Q4_0WideRace [rows] [cols] [seconds]}.
 */
public final class Q4_0WideRace {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    static final VectorSpecies<Short> S512 = ShortVector.SPECIES_512;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Q4_0WideRace() {}

    /** 256-bit, the fold's arithmetic shift replaced by a mask (sum·2^16 converted; scales carry 2^-16 instead). */
    static float dotMaskFold(MemorySegment p, long rowOff, int pb, short[] ax, int a0, float[] dx, float[] cx, int d0, float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p96f).mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
        }
        var e0 = FloatVector.zero(F);
        var o0 = FloatVector.zero(F);
        for (int pr = 0, pairs = pb / 2; pr < pairs; pr++) {
            int b = 2 * pr;
            int a = a0 + 2 * Q8Activations.Q4_LANES * pr;
            var q = ShortVector.fromMemorySegment(S256, p, qOff + 16L * b, LE);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a + 16)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).and(0xFFFF0000);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b]), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S256, ax, a + 48))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S256, ax, a + 64)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).and(0xFFFF0000);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, ss[b + 1]), o0);
        }
        int l = 4 * pb + 16;
        e0.add(o0).add(c0.mul(0x1p16f)).intoArray(ss, l);
        return sum(ss, l, 8);
    }

    /** 512-bit, mask fold as {@link #dotMaskFold}. */
    static float dotWideMaskFold(MemorySegment p, long rowOff, int pb, short[] wx, int a0, float[] dx, float[] cx, int d0, float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p96f).mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = a0 + 4 * Q8Activations.Q4_WIDE_LANES * qd;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var s = FloatVector.fromArray(F512, ss, b);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 32)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).and(0xFFFF0000);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_EVEN), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 64))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, wx, a + 96)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).and(0xFFFF0000);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_ODD), o0);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.mul(0x1p16f).intoArray(ss, l + 16);
        return sum(ss, l, 24);
    }

    /** 512-bit, scales as a broadcast blended with a masked broadcast instead of a load and two permutes. */
    static float dotWideBlend(MemorySegment p, long rowOff, int pb, short[] wx, int a0, float[] dx, float[] cx, int d0, float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = a0 + 4 * Q8Activations.Q4_WIDE_LANES * qd;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 32)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, ss[b]).blend(ss[b + 2], Q4_0Kernels.HIGH8), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 64))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, wx, a + 96)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, ss[b + 1]).blend(ss[b + 3], Q4_0Kernels.HIGH8), o0);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.intoArray(ss, l + 16);
        return sum(ss, l, 24);
    }

    /** Ablation (wrong results, timing only): vpmullw replaced by vpaddw. */
    static float abNoMul(MemorySegment p, long rowOff, int pb, short[] wx, int a0, float[] dx, float[] cx, int d0, float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = a0 + 4 * Q8Activations.Q4_WIDE_LANES * qd;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var s = FloatVector.fromArray(F512, ss, b);
            var v = q.and((short) 0xF).add(ShortVector.fromArray(S512, wx, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).add(ShortVector.fromArray(S512, wx, a + 32)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_EVEN), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).add(ShortVector.fromArray(S512, wx, a + 64))
                    .add(q.lanewise(VectorOperators.LSHR, 12).add(ShortVector.fromArray(S512, wx, a + 96)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_ODD), o0);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.intoArray(ss, l + 16);
        return sum(ss, l, 24);
    }

    /** Ablation (wrong results, timing only): no fold. */
    static float abNoFold(MemorySegment p, long rowOff, int pb, short[] wx, int a0, float[] dx, float[] cx, int d0, float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = a0 + 4 * Q8Activations.Q4_WIDE_LANES * qd;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var s = FloatVector.fromArray(F512, ss, b);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 32)))
                    .reinterpretAsInts();
            var i = v;
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_EVEN), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 64))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, wx, a + 96)))
                    .reinterpretAsInts();
            var i1 = v1;
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_ODD), o0);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.intoArray(ss, l + 16);
        return sum(ss, l, 24);
    }

    /** Ablation (wrong results, timing only): no conversion. */
    static float abNoCvt(MemorySegment p, long rowOff, int pb, short[] wx, int a0, float[] dx, float[] cx, int d0, float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = a0 + 4 * Q8Activations.Q4_WIDE_LANES * qd;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var s = FloatVector.fromArray(F512, ss, b);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 32)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.reinterpretAsFloats()).fma(s.rearrange(Q4_0BatchKernels.QUAD_EVEN), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 64))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, wx, a + 96)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i1.reinterpretAsFloats()).fma(s.rearrange(Q4_0BatchKernels.QUAD_ODD), o0);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.intoArray(ss, l + 16);
        return sum(ss, l, 24);
    }

    static final jdk.incubator.vector.VectorShuffle<Float> SW4 = jdk.incubator.vector.VectorShuffle.fromValues(F, 4, 5, 6, 7, 0, 1, 2, 3);
    static final jdk.incubator.vector.VectorShuffle<Float> SW2 = jdk.incubator.vector.VectorShuffle.fromValues(F, 2, 3, 0, 1, 6, 7, 4, 5);
    static final jdk.incubator.vector.VectorShuffle<Float> SW1 = jdk.incubator.vector.VectorShuffle.fromValues(F, 1, 0, 3, 2, 5, 4, 7, 6);
    /** Quad q of 8 blocks (q = 0, 1): even (b, b+2) and odd (b+1, b+3) scale pairs. */
    static final jdk.incubator.vector.VectorShuffle<Float> E0 = pair(0), O0 = pair(1), E1 = pair(4), O1 = pair(5);

    private static jdk.incubator.vector.VectorShuffle<Float> pair(int first) {
        int[] idx = new int[16];
        for (int i = 0; i < 16; i++) {
            idx[i] = i < 8 ? first : first + 2;
        }
        return jdk.incubator.vector.VectorShuffle.fromArray(F512, idx, 0);
    }

    /** 512-bit kept form, but the lanes summed by fixed-order vector adds (halves, then swaps) instead of a store and scalar adds. */
    static float dotWideVecSum(MemorySegment p, long rowOff, int pb, short[] wx, int a0, float[] dx, float[] cx, int d0, float[] ss) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, d0 + b));
            s0.intoArray(ss, b);
            c0 = s0.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = a0 + 4 * Q8Activations.Q4_WIDE_LANES * qd;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var s = FloatVector.fromArray(F512, ss, b);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 32)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_EVEN), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 64))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, wx, a + 96)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_ODD), o0);
        }
        var t = e0.add(o0);
        var r = ((FloatVector) t.reinterpretShape(F, 0)).add((FloatVector) t.reinterpretShape(F, 1)).add(c0);
        r = r.add(r.rearrange(SW4));
        r = r.add(r.rearrange(SW2));
        r = r.add(r.rearrange(SW1));
        return r.lane(0);
    }

    /** 512-bit, scales made in registers per 8 blocks (no scratch store and reload), fixed-order vector sum. */
    static float dotWideFused(MemorySegment p, long rowOff, int pb, short[] wx, int a0, float[] dx, float[] cx, int d0) {
        long qOff = rowOff + 2L * pb;
        var c0 = FloatVector.zero(F);
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        for (int b = 0; b < pb; b += 8) {
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s8 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(FloatVector.fromArray(F, dx, d0 + b));
            c0 = s8.fma(FloatVector.fromArray(F, cx, d0 + b), c0);
            var s = (FloatVector) s8.reinterpretShape(F512, 0);
            int a = a0 + Q8Activations.Q4_WIDE_LANES * b;
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var v = q.and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 32)))
                    .reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(E0), e0);
            var v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 64))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, wx, a + 96)))
                    .reinterpretAsInts();
            var i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(s.rearrange(O0), o0);
            q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b + 64, LE);
            v = q.and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 128))
                    .add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 160)))
                    .reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(E1), e0);
            v1 = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, wx, a + 192))
                    .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, wx, a + 224)))
                    .reinterpretAsInts();
            i1 = v1.add(v1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(s.rearrange(O1), o0);
        }
        var t = e0.add(o0);
        var r = ((FloatVector) t.reinterpretShape(F, 0)).add((FloatVector) t.reinterpretShape(F, 1)).add(c0);
        r = r.add(r.rearrange(SW4));
        r = r.add(r.rearrange(SW2));
        r = r.add(r.rearrange(SW1));
        return r.lane(0);
    }

    /** 512-bit kept arithmetic for two weight rows per pass (activations loaded once for both); results to y[r], y[r + 1]. */
    static void dot2Wide(MemorySegment p, long rowOff, long rowBytes, int pb, short[] wx, int a0, float[] dx, float[] cx, int d0,
                         float[] ss, MemorySegment y, long yOff) {
        long qOff = rowOff + 2L * pb;
        long rowOff1 = rowOff + rowBytes;
        long qOff1 = qOff + rowBytes;
        var c0 = FloatVector.zero(F);
        var c1 = FloatVector.zero(F);
        for (int b = 0; b < pb; b += 8) {
            var dxv = FloatVector.fromArray(F, dx, d0 + b);
            var cxv = FloatVector.fromArray(F, cx, d0 + b);
            var h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            var bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s0 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(dxv);
            s0.intoArray(ss, b);
            c0 = s0.fma(cxv, c0);
            h = (IntVector) ShortVector.fromMemorySegment(S128, p, rowOff1 + 2L * b, LE).convertShape(VectorOperators.S2I, I, 0);
            bits = h.and(0x80000000).or(h.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000));
            var s1 = ((FloatVector) bits.reinterpretAsFloats()).mul(0x1p112f).mul(dxv);
            s1.intoArray(ss, pb + b);
            c1 = s1.fma(cxv, c1);
        }
        var e0 = FloatVector.zero(F512);
        var o0 = FloatVector.zero(F512);
        var e1 = FloatVector.zero(F512);
        var o1 = FloatVector.zero(F512);
        for (int qd = 0, quads = pb / 4; qd < quads; qd++) {
            int b = 4 * qd;
            int a = a0 + 4 * Q8Activations.Q4_WIDE_LANES * qd;
            var x0 = ShortVector.fromArray(S512, wx, a);
            var x1 = ShortVector.fromArray(S512, wx, a + 32);
            var x2 = ShortVector.fromArray(S512, wx, a + 64);
            var x3 = ShortVector.fromArray(S512, wx, a + 96);
            var q = ShortVector.fromMemorySegment(S512, p, qOff + 16L * b, LE);
            var s = FloatVector.fromArray(F512, ss, b);
            var v = q.and((short) 0xF).mul(x0).add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(x1)).reinterpretAsInts();
            var i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_EVEN), e0);
            v = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(x2).add(q.lanewise(VectorOperators.LSHR, 12).mul(x3)).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o0 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_ODD), o0);
            q = ShortVector.fromMemorySegment(S512, p, qOff1 + 16L * b, LE);
            s = FloatVector.fromArray(F512, ss, pb + b);
            v = q.and((short) 0xF).mul(x0).add(q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(x1)).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            e1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_EVEN), e1);
            v = q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(x2).add(q.lanewise(VectorOperators.LSHR, 12).mul(x3)).reinterpretAsInts();
            i = v.add(v.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
            o1 = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(s.rearrange(Q4_0BatchKernels.QUAD_ODD), o1);
        }
        int l = 4 * pb + 16;
        e0.add(o0).intoArray(ss, l);
        c0.intoArray(ss, l + 16);
        e1.add(o1).intoArray(ss, l + 24);
        c1.intoArray(ss, l + 40);
        y.set(ValueLayout.JAVA_FLOAT_UNALIGNED, yOff, sum(ss, l, 24));
        y.set(ValueLayout.JAVA_FLOAT_UNALIGNED, yOff + 4, sum(ss, l + 24, 24));
    }

    private static float sum(float[] v, int off, int n) {
        float s = 0;
        for (int k = 0; k < n; k++) {
            s += v[off + k];
        }
        return s;
    }

    public static void main(String[] args) {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 8192;
        int cols = args.length > 1 ? Integer.parseInt(args[1]) : 2048;
        double seconds = args.length > 2 ? Double.parseDouble(args[2]) : 30;
        String[] names = {"256 (before)", "512 (kept)", "256 mask fold", "512 mask fold", "512 blend scales", "512 no mul", "512 no fold", "512 no cvt", "512 vector sum", "512 fused scales", "512 two rows"};
        try (Arena arena = Arena.ofShared()) {
            MemorySegment w = arena.allocate(GgmlType.Q4_0.bytesFor(cols) * rows, 64);
            MatmulBenchmark.fillWeights(GgmlType.Q4_0, w, 42);
            PackedWeights pw = PackedWeights.prepare(GgmlType.Q4_0, w, rows, cols, arena);
            MemorySegment x = arena.allocate(4L * cols, 64);
            for (int i = 0; i < cols; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) Math.sin(i));
            }
            int pb = pw.paddedBlocks();
            short[] ax = new short[pb * Q8Activations.Q4_LANES];
            short[] wx = new short[pb * Q8Activations.Q4_WIDE_LANES];
            float[] dx = new float[pb];
            float[] cx = new float[pb];
            float[] ss = new float[Q4_0BatchKernels.scratchFloats(pb)];
            Q8Activations.quantizeRowQ4(x, 0, cols, pb, ax, 0, dx, 0);
            Q8Activations.blockCorrections(ax, 0, pb, cx, 0);
            Q8Activations.planarWide(ax, 0, pb, wx, 0);
            MemorySegment bx = arena.allocate(wx.length, 64);
            Q4_0BatchKernels.activationBytes(ax, 0, pb, bx, 0);
            long rowBytes = PackedWeights.q4PlanarRowBytes(pb);
            MemorySegment p = pw.packed();
            MemorySegment[] y = new MemorySegment[names.length];
            for (int k = 0; k < y.length; k++) {
                y[k] = arena.allocate(4L * rows, 64);
            }
            long[][] t = new long[names.length][200000];
            int n = 0;
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warm = System.nanoTime() + (long) (seconds * 0.2e9);
            while (System.nanoTime() < end && n < t[0].length) {
                for (int k = 0; k < names.length; k++) {
                    long t0 = System.nanoTime();
                    switch (k) {
                        case 0 -> Q4_0BatchKernels.rowsPlanar(p, pb, 0, rows, ax, 0, dx, cx, 0, 1, y[k], 0, ss);
                        case 1 -> Q4_0BatchKernels.rowsPlanarWide(p, pb, 0, rows, wx, 0, pb > Q4_0BatchKernels.BYTE_ACTIVATIONS_MIN_BLOCKS ? bx : null, dx, cx, 0, 1, y[k], 0, ss);
                        case 2 -> {
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, dotMaskFold(p, r * rowBytes, pb, ax, 0, dx, cx, 0, ss));
                            }
                        }
                        case 3 -> {
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, dotWideMaskFold(p, r * rowBytes, pb, wx, 0, dx, cx, 0, ss));
                            }
                        }
                        case 4 -> {
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, dotWideBlend(p, r * rowBytes, pb, wx, 0, dx, cx, 0, ss));
                            }
                        }
                        case 5 -> {
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, abNoMul(p, r * rowBytes, pb, wx, 0, dx, cx, 0, ss));
                            }
                        }
                        case 6 -> {
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, abNoFold(p, r * rowBytes, pb, wx, 0, dx, cx, 0, ss));
                            }
                        }
                        case 8 -> {
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, dotWideVecSum(p, r * rowBytes, pb, wx, 0, dx, cx, 0, ss));
                            }
                        }
                        case 10 -> {
                            for (int r = 0; r < rows; r += 2) {
                                dot2Wide(p, r * rowBytes, rowBytes, pb, wx, 0, dx, cx, 0, ss, y[k], 4L * r);
                            }
                        }
                        case 9 -> {
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, dotWideFused(p, r * rowBytes, pb, wx, 0, dx, cx, 0));
                            }
                        }
                        default -> {
                            for (int r = 0; r < rows; r++) {
                                y[k].setAtIndex(ValueLayout.JAVA_FLOAT, r, abNoCvt(p, r * rowBytes, pb, wx, 0, dx, cx, 0, ss));
                            }
                        }
                    }
                    t[k][n] = System.nanoTime() - t0;
                }
                if (System.nanoTime() > warm) {
                    n++;
                }
            }
            double[] best = new double[names.length];
            for (int k = 0; k < names.length; k++) {
                long[] v = Arrays.copyOf(t[k], n);
                Arrays.sort(v);
                best[k] = (double) pw.packedBytes() / v[0];
                double diff = 0;
                for (long i = 0; i < rows; i++) {
                    diff = Math.max(diff, Math.abs(y[k].getAtIndex(ValueLayout.JAVA_FLOAT, i) - y[0].getAtIndex(ValueLayout.JAVA_FLOAT, i)));
                }
                System.out.printf(Locale.ROOT, "%-18s best %5.1f GB/s (%.3f× 256), median %5.1f GB/s (%d passes), max |y - y256| %.3g%n",
                        names[k], best[k], best[k] / best[0], (double) pw.packedBytes() / v[n / 2], n, diff);
            }
        }
    }
}
