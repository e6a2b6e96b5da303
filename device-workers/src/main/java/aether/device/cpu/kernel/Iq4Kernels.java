package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.IQ4_NL_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.IQ4_NL_QS;
import static aether.device.cpu.kernel.BlockLayouts.IQ4_XS_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.IQ4_XS_QS;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector float-path kernels for IQ4_NL and IQ4_XS: each nibble indexes the 16-entry codebook, looked up 8 lanes at a
 * time with the two-table {@code selectFrom} (the codebook is two int vectors of 8), then converted and FMA'd.
 */
final class Iq4Kernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final IntVector LO = IntVector.fromArray(I, BlockLayouts.IQ4_NL_VALUES, 0);
    static final IntVector HI = IntVector.fromArray(I, BlockLayouts.IQ4_NL_VALUES, 8);

    private Iq4Kernels() {}

    static float dotNl(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc = FloatVector.zero(F);
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * IQ4_NL_BYTES;
            long q = blk + IQ4_NL_QS;
            long xb = xOff + b * 128L;
            var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, q, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, q + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var p = ((FloatVector) i0.and(0xF).selectFrom(LO, HI).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromMemorySegment(F, x, xb, LE));
            p = ((FloatVector) i1.and(0xF).selectFrom(LO, HI).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromMemorySegment(F, x, xb + 32, LE), p);
            p = ((FloatVector) i0.lanewise(VectorOperators.LSHR, 4).selectFrom(LO, HI).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.fromMemorySegment(F, x, xb + 64, LE), p);
            p = ((FloatVector) i1.lanewise(VectorOperators.LSHR, 4).selectFrom(LO, HI).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.fromMemorySegment(F, x, xb + 96, LE), p);
            acc = p.fma(FloatVector.broadcast(F, BlockLayouts.f16(w, blk)), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    static float dotXs(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc = FloatVector.zero(F);
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * IQ4_XS_BYTES;
            float d = BlockLayouts.f16(w, blk);
            for (int ib = 0; ib < 8; ib++) {
                long q = blk + IQ4_XS_QS + 16L * ib;
                long xb = xOff + (b * 256L + 32L * ib) * Float.BYTES;
                var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, q, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, q + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                var p = ((FloatVector) i0.and(0xF).selectFrom(LO, HI).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromMemorySegment(F, x, xb, LE));
                p = ((FloatVector) i1.and(0xF).selectFrom(LO, HI).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromMemorySegment(F, x, xb + 32, LE), p);
                p = ((FloatVector) i0.lanewise(VectorOperators.LSHR, 4).selectFrom(LO, HI).convert(VectorOperators.I2F, 0))
                        .fma(FloatVector.fromMemorySegment(F, x, xb + 64, LE), p);
                p = ((FloatVector) i1.lanewise(VectorOperators.LSHR, 4).selectFrom(LO, HI).convert(VectorOperators.I2F, 0))
                        .fma(FloatVector.fromMemorySegment(F, x, xb + 96, LE), p);
                acc = p.fma(FloatVector.broadcast(F, d * (BlockLayouts.iq4xsScale(w, blk, ib) - 32)), acc);
            }
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /** Dequantizes {@code elements} elements (whole blocks); {@code xs} selects the IQ4_XS layout, else IQ4_NL. */
    static void dequant(MemorySegment w, long wOff, int elements, float[] dst, int dstOff, boolean xs) {
        for (int sb = 0; sb < elements / 32; sb++) {
            long q;
            float scale;
            if (xs) {
                long blk = wOff + (long) (sb / 8) * IQ4_XS_BYTES;
                q = blk + IQ4_XS_QS + 16L * (sb % 8);
                scale = BlockLayouts.f16(w, blk) * (BlockLayouts.iq4xsScale(w, blk, sb % 8) - 32);
            } else {
                long blk = wOff + (long) sb * IQ4_NL_BYTES;
                q = blk + IQ4_NL_QS;
                scale = BlockLayouts.f16(w, blk);
            }
            int o = dstOff + 32 * sb;
            var d = FloatVector.broadcast(F, scale);
            var i0 = (IntVector) ByteVector.fromMemorySegment(B64, w, q, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            var i1 = (IntVector) ByteVector.fromMemorySegment(B64, w, q + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            ((FloatVector) i0.and(0xF).selectFrom(LO, HI).convert(VectorOperators.I2F, 0)).mul(d).intoArray(dst, o);
            ((FloatVector) i1.and(0xF).selectFrom(LO, HI).convert(VectorOperators.I2F, 0)).mul(d).intoArray(dst, o + 8);
            ((FloatVector) i0.lanewise(VectorOperators.LSHR, 4).selectFrom(LO, HI).convert(VectorOperators.I2F, 0)).mul(d)
                    .intoArray(dst, o + 16);
            ((FloatVector) i1.lanewise(VectorOperators.LSHR, 4).selectFrom(LO, HI).convert(VectorOperators.I2F, 0)).mul(d)
                    .intoArray(dst, o + 24);
        }
    }

    /** {@code y[t][r] = dotNl(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsNl(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotNl(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }

    /** {@code y[t][r] = dotXs(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsXs(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotXs(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }
}
