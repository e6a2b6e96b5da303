package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q4_1_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q4_1_M;
import static aether.device.cpu.kernel.BlockLayouts.Q4_1_QS;
import static aether.device.cpu.kernel.BlockLayouts.Q5_0_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q5_0_QH;
import static aether.device.cpu.kernel.BlockLayouts.Q5_0_QS;
import static aether.device.cpu.kernel.BlockLayouts.Q5_1_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q5_1_M;
import static aether.device.cpu.kernel.BlockLayouts.Q5_1_QH;
import static aether.device.cpu.kernel.BlockLayouts.Q5_1_QS;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector float-path kernels for the other 32-element legacy types, Q4_1, Q5_0 and Q5_1: nibbles zero-extended to int
 * lanes and cut there, the 5th bit pulled from the broadcast {@code qh} word with per-lane variable shifts
 * (vpsrlvd). Offsets (the {@code m} of Q4_1/Q5_1, the −16 of Q5_0) are applied once per block through the sum of
 * the block's activations rather than per element. Bodies are inline for the reason given in {@link Q4_0Kernels}.
 */
final class Legacy5Kernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Shift counts that bring bit j of qh to bit 0, for the four 8-element groups j = 0-7, 8-15, 16-23, 24-31. */
    static final IntVector SH0 = IntVector.fromArray(I, new int[] {0, 1, 2, 3, 4, 5, 6, 7}, 0);
    static final IntVector SH8 = SH0.add(8);
    static final IntVector SH16 = SH0.add(16);
    static final IntVector SH24 = SH0.add(24);

    private Legacy5Kernels() {}

    static float dotQ4_1(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc = FloatVector.zero(F);
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * Q4_1_BYTES;
            long xb = xOff + b * 128L;
            var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_1_QS, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_1_QS + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var x0 = FloatVector.fromMemorySegment(F, x, xb, LE);
            var x1 = FloatVector.fromMemorySegment(F, x, xb + 32, LE);
            var x2 = FloatVector.fromMemorySegment(F, x, xb + 64, LE);
            var x3 = FloatVector.fromMemorySegment(F, x, xb + 96, LE);
            var p = ((FloatVector) i0.and(0xF).convert(VectorOperators.I2F, 0)).mul(x0);
            p = ((FloatVector) i1.and(0xF).convert(VectorOperators.I2F, 0)).fma(x1, p);
            p = ((FloatVector) i0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(x2, p);
            p = ((FloatVector) i1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(x3, p);
            acc = p.fma(FloatVector.broadcast(F, BlockLayouts.f16(w, blk)), acc);
            acc = x0.add(x1).add(x2.add(x3)).fma(FloatVector.broadcast(F, BlockLayouts.f16(w, blk + Q4_1_M)), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /** Q5_0 ({@code hasMin=false}: value d·(q−16)) and Q5_1 (value d·q + m) share one body. */
    static float dotQ5(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols, boolean hasMin) {
        int bytes = hasMin ? Q5_1_BYTES : Q5_0_BYTES;
        int qhOff = hasMin ? Q5_1_QH : Q5_0_QH;
        int qsOff = hasMin ? Q5_1_QS : Q5_0_QS;
        var acc = FloatVector.zero(F);
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * bytes;
            long xb = xOff + b * 128L;
            var qh = IntVector.broadcast(I, w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + qhOff));
            var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + qsOff, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + qsOff + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var q0 = i0.and(0xF).or(qh.lanewise(VectorOperators.LSHR, SH0).and(1).lanewise(VectorOperators.LSHL, 4));
            var q1 = i1.and(0xF).or(qh.lanewise(VectorOperators.LSHR, SH8).and(1).lanewise(VectorOperators.LSHL, 4));
            var q2 = i0.lanewise(VectorOperators.LSHR, 4).or(qh.lanewise(VectorOperators.LSHR, SH16).and(1).lanewise(VectorOperators.LSHL, 4));
            var q3 = i1.lanewise(VectorOperators.LSHR, 4).or(qh.lanewise(VectorOperators.LSHR, SH24).and(1).lanewise(VectorOperators.LSHL, 4));
            var x0 = FloatVector.fromMemorySegment(F, x, xb, LE);
            var x1 = FloatVector.fromMemorySegment(F, x, xb + 32, LE);
            var x2 = FloatVector.fromMemorySegment(F, x, xb + 64, LE);
            var x3 = FloatVector.fromMemorySegment(F, x, xb + 96, LE);
            var p = ((FloatVector) q0.convert(VectorOperators.I2F, 0)).mul(x0);
            p = ((FloatVector) q1.convert(VectorOperators.I2F, 0)).fma(x1, p);
            p = ((FloatVector) q2.convert(VectorOperators.I2F, 0)).fma(x2, p);
            p = ((FloatVector) q3.convert(VectorOperators.I2F, 0)).fma(x3, p);
            float d = BlockLayouts.f16(w, blk);
            float offset = hasMin ? BlockLayouts.f16(w, blk + Q5_1_M) : -16f * d;
            acc = p.fma(FloatVector.broadcast(F, d), acc);
            acc = x0.add(x1).add(x2.add(x3)).fma(FloatVector.broadcast(F, offset), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    static void dequantQ4_1(MemorySegment w, long wOff, int blocks, float[] dst, int dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_1_BYTES;
            int o = dstOff + 32 * b;
            var d = FloatVector.broadcast(F, BlockLayouts.f16(w, blk));
            var m = FloatVector.broadcast(F, BlockLayouts.f16(w, blk + Q4_1_M));
            var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_1_QS, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + Q4_1_QS + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            ((FloatVector) i0.and(0xF).convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(dst, o);
            ((FloatVector) i1.and(0xF).convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(dst, o + 8);
            ((FloatVector) i0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(dst, o + 16);
            ((FloatVector) i1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(dst, o + 24);
        }
    }

    static void dequantQ5(MemorySegment w, long wOff, int blocks, float[] dst, int dstOff, boolean hasMin) {
        int bytes = hasMin ? Q5_1_BYTES : Q5_0_BYTES;
        int qhOff = hasMin ? Q5_1_QH : Q5_0_QH;
        int qsOff = hasMin ? Q5_1_QS : Q5_0_QS;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * bytes;
            int o = dstOff + 32 * b;
            float df = BlockLayouts.f16(w, blk);
            var d = FloatVector.broadcast(F, df);
            var m = FloatVector.broadcast(F, hasMin ? BlockLayouts.f16(w, blk + Q5_1_M) : -16f * df);
            var qh = IntVector.broadcast(I, w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + qhOff));
            var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + qsOff, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, blk + qsOff + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            ((FloatVector) i0.and(0xF).or(qh.lanewise(VectorOperators.LSHR, SH0).and(1).lanewise(VectorOperators.LSHL, 4))
                    .convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(dst, o);
            ((FloatVector) i1.and(0xF).or(qh.lanewise(VectorOperators.LSHR, SH8).and(1).lanewise(VectorOperators.LSHL, 4))
                    .convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(dst, o + 8);
            ((FloatVector) i0.lanewise(VectorOperators.LSHR, 4).or(qh.lanewise(VectorOperators.LSHR, SH16).and(1).lanewise(VectorOperators.LSHL, 4))
                    .convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(dst, o + 16);
            ((FloatVector) i1.lanewise(VectorOperators.LSHR, 4).or(qh.lanewise(VectorOperators.LSHR, SH24).and(1).lanewise(VectorOperators.LSHL, 4))
                    .convert(VectorOperators.I2F, 0)).fma(d, m).intoArray(dst, o + 24);
        }
    }

    /** {@code y[t][r] = dotQ4_1(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ4_1(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ4_1(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }

    /** {@code y[t][r] = dotQ5(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ5_0(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ5(w, r * rowBytes, x, t * xStride, cols, false));
            }
        }
    }

    /** {@code y[t][r] = dotQ5(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ5_1(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ5(w, r * rowBytes, x, t * xStride, cols, true));
            }
        }
    }
}
