package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q4_K_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q4_K_DMIN;
import static aether.device.cpu.kernel.BlockLayouts.Q4_K_QS;
import static aether.device.cpu.kernel.BlockLayouts.Q4_K_SCALES;
import static aether.device.cpu.kernel.BlockLayouts.Q6_K_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q6_K_D;
import static aether.device.cpu.kernel.BlockLayouts.Q6_K_QH;
import static aether.device.cpu.kernel.BlockLayouts.Q6_K_SCALES;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector float-path kernels for the K-quants Q4_K and Q6_K (256-element super-blocks). Scales and mins are decoded
 * with scalar code once per sub-block; the quants are zero-extended 8 at a time to int lanes (the only conversion
 * C2 intrinsifies well, see {@link Q4_0Kernels}) and cut there. Q4_K's mins are applied through the sum of each
 * sub-block's activations, once per 32 elements.
 */
final class KQuantKernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private KQuantKernels() {}

    static float dotQ4_K(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        // One 32-element sub-block at a time, 8 lanes per step, each activation vector loaded once for the dot and
        // the sum: 1.5x faster than unpacking a whole 64-element group (both nibbles) at once, measured; that form
        // keeps 17 vectors live and C2 spills.
        var acc = FloatVector.zero(F);
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * Q4_K_BYTES;
            float d = BlockLayouts.f16(w, blk);
            float dmin = BlockLayouts.f16(w, blk + Q4_K_DMIN);
            long scales = q4kScales(w, blk + Q4_K_SCALES);   // unpacked once per super-block: +15% over per-sub-block
            long mins = q4kMins(w, blk + Q4_K_SCALES);       // byte reads with their range checks and branches
            for (int s = 0; s < 8; s++) {
                long q = blk + Q4_K_QS + 32L * (s >> 1);       // sub-block 2g in low nibbles, 2g+1 in high ones
                long xb = xOff + (b * 256L + 32L * s) * Float.BYTES;
                int shift = (s & 1) << 2;
                var p = FloatVector.zero(F);
                var xs = FloatVector.zero(F);
                for (int k = 0; k < 4; k++) {
                    var xv = FloatVector.fromMemorySegment(F, x, xb + 32L * k, LE);
                    var iv = ((IntVector) ByteVector.fromMemorySegment(B64, w, q + 8L * k, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).lanewise(VectorOperators.LSHR, shift).and(0xF);
                    p = ((FloatVector) iv.convert(VectorOperators.I2F, 0)).fma(xv, p);
                    xs = xs.add(xv);
                }
                acc = p.fma(FloatVector.broadcast(F, d * (int) ((scales >>> (8 * s)) & 0xFF)), acc);
                acc = xs.fma(FloatVector.broadcast(F, -dmin * (int) ((mins >>> (8 * s)) & 0xFF)), acc);
            }
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /**
     * The 8 six-bit scales of a Q4_K/Q5_K super-block, scale j in byte j of the result: ggml's utmp unpacking of the
     * 12 packed bytes (kmask1/2/3) from three little-endian words, branch-free.
     */
    static long q4kScales(MemorySegment w, long off) {
        int a0 = w.get(ValueLayout.JAVA_INT_UNALIGNED, off);
        int a2 = w.get(ValueLayout.JAVA_INT_UNALIGNED, off + 8);
        int lo = a0 & 0x3f3f3f3f;
        int hi = (a2 & 0x0f0f0f0f) | (((a0 >>> 6) & 0x03030303) << 4);
        return (lo & 0xFFFFFFFFL) | ((long) hi << 32);
    }

    /** The 8 six-bit mins of a Q4_K/Q5_K super-block, min j in byte j (see {@link #q4kScales}). */
    static long q4kMins(MemorySegment w, long off) {
        int a0 = w.get(ValueLayout.JAVA_INT_UNALIGNED, off + 4);
        int a2 = w.get(ValueLayout.JAVA_INT_UNALIGNED, off + 8);
        int lo = a0 & 0x3f3f3f3f;
        int hi = ((a2 >>> 4) & 0x0f0f0f0f) | (((a0 >>> 6) & 0x03030303) << 4);
        return (lo & 0xFFFFFFFFL) | ((long) hi << 32);
    }

    static void dequantQ4_K(MemorySegment w, long wOff, int blocks, float[] dst, int dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_K_BYTES;
            float d = BlockLayouts.f16(w, blk);
            float dmin = BlockLayouts.f16(w, blk + Q4_K_DMIN);
            long sc = blk + Q4_K_SCALES;
            for (int g = 0; g < 4; g++) {
                long q = blk + Q4_K_QS + 32L * g;
                int o = dstOff + 256 * b + 64 * g;
                var dl = FloatVector.broadcast(F, d * BlockLayouts.q4kScale(w, sc, 2 * g));
                var ml = FloatVector.broadcast(F, -dmin * BlockLayouts.q4kMin(w, sc, 2 * g));
                var dh = FloatVector.broadcast(F, d * BlockLayouts.q4kScale(w, sc, 2 * g + 1));
                var mh = FloatVector.broadcast(F, -dmin * BlockLayouts.q4kMin(w, sc, 2 * g + 1));
                for (int k = 0; k < 4; k++) {
                    var i = (IntVector) ByteVector.fromMemorySegment(B64, w, q + 8 * k, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    ((FloatVector) i.and(0xF).convert(VectorOperators.I2F, 0)).fma(dl, ml).intoArray(dst, o + 8 * k);
                    ((FloatVector) i.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(dh, mh)
                            .intoArray(dst, o + 32 + 8 * k);
                }
            }
        }
    }

    static float dotQ6_K(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc = FloatVector.zero(F);
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * Q6_K_BYTES;
            float d = BlockLayouts.f16(w, blk + Q6_K_D);
            for (int h = 0; h < 2; h++) {
                long ql = blk + 64L * h;
                long qh = blk + Q6_K_QH + 32L * h;
                // the half's 8 int8 scales in one read: +11% over a byte read (and range check) per use, measured
                long sc = w.get(ValueLayout.JAVA_LONG_UNALIGNED, blk + Q6_K_SCALES + 8L * h);
                long xb = xOff + (b * 256L + 128L * h) * Float.BYTES;
                for (int g = 0; g < 4; g++) {                 // l = 8g .. 8g+7; scale index is = g / 2
                    int l = 8 * g;
                    var lo = (IntVector) ByteVector.fromMemorySegment(B64, w, ql + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    var hi = (IntVector) ByteVector.fromMemorySegment(B64, w, ql + l + 32, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    var hb = (IntVector) ByteVector.fromMemorySegment(B64, w, qh + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    // bits 2k..2k+1 of qh become bits 4-5 of q: shift left 4, left 2, none, right 2, then mask 0x30
                    var q1 = lo.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 4).and(0x30));
                    var q2 = hi.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 2).and(0x30));
                    var q3 = lo.lanewise(VectorOperators.LSHR, 4).or(hb.and(0x30));
                    var q4 = hi.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 2).and(0x30));
                    int is = g >> 1;
                    long xl = xb + 4L * l;
                    acc = ((FloatVector) q1.sub(32).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromMemorySegment(F, x, xl, LE))
                            .fma(FloatVector.broadcast(F, d * (byte) (sc >>> (8 * (is + 0)))), acc);
                    acc = ((FloatVector) q2.sub(32).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromMemorySegment(F, x, xl + 128, LE))
                            .fma(FloatVector.broadcast(F, d * (byte) (sc >>> (8 * (is + 2)))), acc);
                    acc = ((FloatVector) q3.sub(32).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromMemorySegment(F, x, xl + 256, LE))
                            .fma(FloatVector.broadcast(F, d * (byte) (sc >>> (8 * (is + 4)))), acc);
                    acc = ((FloatVector) q4.sub(32).convert(VectorOperators.I2F, 0)).mul(FloatVector.fromMemorySegment(F, x, xl + 384, LE))
                            .fma(FloatVector.broadcast(F, d * (byte) (sc >>> (8 * (is + 6)))), acc);
                }
            }
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    static void dequantQ6_K(MemorySegment w, long wOff, int blocks, float[] dst, int dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q6_K_BYTES;
            float d = BlockLayouts.f16(w, blk + Q6_K_D);
            for (int h = 0; h < 2; h++) {
                long ql = blk + 64L * h;
                long qh = blk + Q6_K_QH + 32L * h;
                long sc = blk + Q6_K_SCALES + 8L * h;
                int ob = dstOff + 256 * b + 128 * h;
                for (int g = 0; g < 4; g++) {
                    int l = 8 * g;
                    var lo = (IntVector) ByteVector.fromMemorySegment(B64, w, ql + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    var hi = (IntVector) ByteVector.fromMemorySegment(B64, w, ql + l + 32, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    var hb = (IntVector) ByteVector.fromMemorySegment(B64, w, qh + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    int is = g >> 1;
                    int o = ob + l;
                    ((FloatVector) lo.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 4).and(0x30)).sub(32).convert(VectorOperators.I2F, 0))
                            .mul(d * w.get(ValueLayout.JAVA_BYTE, sc + is)).intoArray(dst, o);
                    ((FloatVector) hi.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 2).and(0x30)).sub(32).convert(VectorOperators.I2F, 0))
                            .mul(d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2)).intoArray(dst, o + 32);
                    ((FloatVector) lo.lanewise(VectorOperators.LSHR, 4).or(hb.and(0x30)).sub(32).convert(VectorOperators.I2F, 0))
                            .mul(d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4)).intoArray(dst, o + 64);
                    ((FloatVector) hi.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 2).and(0x30)).sub(32)
                            .convert(VectorOperators.I2F, 0)).mul(d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6)).intoArray(dst, o + 96);
                }
            }
        }
    }

    /** {@code y[t][r] = dotQ4_K(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ4_K(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ4_K(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }

    /** {@code y[t][r] = dotQ6_K(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ6_K(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ6_K(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }

    static float dotQ5_K(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc = FloatVector.zero(F);               // same sub-block walk as dotQ4_K, plus the qh bit
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q5_K_BYTES;
            float d = BlockLayouts.f16(w, blk);
            float dmin = BlockLayouts.f16(w, blk + Q4_K_DMIN);
            long scales = q4kScales(w, blk + Q4_K_SCALES);   // Q4_K's scale format: unpacked once per super-block
            long mins = q4kMins(w, blk + Q4_K_SCALES);
            long qh = blk + BlockLayouts.Q5_K_QH;
            for (int s = 0; s < 8; s++) {
                long q = blk + BlockLayouts.Q5_K_QS + 32L * (s >> 1);
                long xb = xOff + (b * 256L + 32L * s) * Float.BYTES;
                int shift = (s & 1) << 2;
                var p = FloatVector.zero(F);
                var ph = FloatVector.zero(F);
                var xs = FloatVector.zero(F);
                int bit = 1 << s;
                for (int k = 0; k < 4; k++) {
                    var xv = FloatVector.fromMemorySegment(F, x, xb + 32L * k, LE);
                    var iv = ((IntVector) ByteVector.fromMemorySegment(B64, w, q + 8L * k, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).lanewise(VectorOperators.LSHR, shift).and(0xF);
                    var hv = ((IntVector) ByteVector.fromMemorySegment(B64, w, qh + 8L * k, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).and(bit);
                    p = ((FloatVector) iv.convert(VectorOperators.I2F, 0)).fma(xv, p);
                    ph = ((FloatVector) hv.convert(VectorOperators.I2F, 0)).fma(xv, ph);
                    xs = xs.add(xv);
                }
                p = ph.fma(FloatVector.broadcast(F, 16f / bit), p);   // the 5th bit, 0 or 2^s, scaled to 16 (exact)
                acc = p.fma(FloatVector.broadcast(F, d * (int) ((scales >>> (8 * s)) & 0xFF)), acc);
                acc = xs.fma(FloatVector.broadcast(F, -dmin * (int) ((mins >>> (8 * s)) & 0xFF)), acc);
            }
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    static void dequantQ5_K(MemorySegment w, long wOff, int blocks, float[] dst, int dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q5_K_BYTES;
            float d = BlockLayouts.f16(w, blk);
            float dmin = BlockLayouts.f16(w, blk + Q4_K_DMIN);
            long sc = blk + Q4_K_SCALES;
            for (int g = 0; g < 4; g++) {
                long q = blk + BlockLayouts.Q5_K_QS + 32L * g;
                long qh = blk + BlockLayouts.Q5_K_QH;
                int o = dstOff + 256 * b + 64 * g;
                var dl = FloatVector.broadcast(F, d * BlockLayouts.q4kScale(w, sc, 2 * g));
                var ml = FloatVector.broadcast(F, -dmin * BlockLayouts.q4kMin(w, sc, 2 * g));
                var dh = FloatVector.broadcast(F, d * BlockLayouts.q4kScale(w, sc, 2 * g + 1));
                var mh = FloatVector.broadcast(F, -dmin * BlockLayouts.q4kMin(w, sc, 2 * g + 1));
                for (int k = 0; k < 4; k++) {
                    var i = (IntVector) ByteVector.fromMemorySegment(B64, w, q + 8 * k, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    var h = (IntVector) ByteVector.fromMemorySegment(B64, w, qh + 8 * k, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    ((FloatVector) i.and(0xF).or(h.lanewise(VectorOperators.LSHR, 2 * g).and(1).lanewise(VectorOperators.LSHL, 4))
                            .convert(VectorOperators.I2F, 0)).fma(dl, ml).intoArray(dst, o + 8 * k);
                    ((FloatVector) i.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 2 * g + 1).and(1).lanewise(VectorOperators.LSHL, 4))
                            .convert(VectorOperators.I2F, 0)).fma(dh, mh).intoArray(dst, o + 32 + 8 * k);
                }
            }
        }
    }

    /**
     * Q2_K ({@code q3 = false}) and Q3_K share one walk: per 128-half n, per 2-bit shift j, two runs of 16 elements
     * (qs bytes 0-15 and 16-31 of the half), each with its own scale; Q3_K adds the hmask bit (set: +0, clear: −4).
     */
    static float dotQ2Q3(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols, boolean q3) {
        int bytes = q3 ? BlockLayouts.Q3_K_BYTES : BlockLayouts.Q2_K_BYTES;
        int qsOff = q3 ? BlockLayouts.Q3_K_QS : BlockLayouts.Q2_K_QS;
        var acc = FloatVector.zero(F);
        for (int b = 0; b < cols / 256; b++) {
            long blk = wOff + (long) b * bytes;
            float d = BlockLayouts.f16(w, blk + (q3 ? BlockLayouts.Q3_K_D : BlockLayouts.Q2_K_D));
            float dmin = q3 ? 0f : BlockLayouts.f16(w, blk + BlockLayouts.Q2_K_DMIN);
            for (int run = 0; run < 16; run++) {           // run = n*8 + j*2 + half: ggml's scale index "is"
                int n = run >> 3;
                int j = (run >> 1) & 3;
                int half = run & 1;
                long q = blk + qsOff + 32L * n + 16L * half;
                long xr = xOff + (b * 256L + 128L * n + 32L * j + 16L * half) * Float.BYTES;
                var i0 = ((IntVector) ByteVector.fromMemorySegment(B64, w, q, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .lanewise(VectorOperators.LSHR, 2 * j).and(3);
                var i1 = ((IntVector) ByteVector.fromMemorySegment(B64, w, q + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .lanewise(VectorOperators.LSHR, 2 * j).and(3);
                float dl;
                float ml;
                if (q3) {
                    long hm = blk + 16L * half;
                    int bit = 4 * n + j;
                    i0 = i0.add(((IntVector) ByteVector.fromMemorySegment(B64, w, hm, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                            .lanewise(VectorOperators.LSHR, bit).and(1).lanewise(VectorOperators.LSHL, 2));
                    i1 = i1.add(((IntVector) ByteVector.fromMemorySegment(B64, w, hm + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                            .lanewise(VectorOperators.LSHR, bit).and(1).lanewise(VectorOperators.LSHL, 2));
                    dl = d * (BlockLayouts.q3kScale(w, blk, run) - 32);
                    ml = 4 * dl;                              // q − 4 + 4·bit: the −4 goes through the activation sum
                } else {
                    int sc = BlockLayouts.u8(w, blk + run);
                    dl = d * (sc & 0xF);
                    ml = dmin * (sc >> 4);
                }
                var x0 = FloatVector.fromMemorySegment(F, x, xr, LE);
                var x1 = FloatVector.fromMemorySegment(F, x, xr + 32, LE);
                var p = ((FloatVector) i0.convert(VectorOperators.I2F, 0)).mul(x0);
                p = ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(x1, p);
                acc = p.fma(FloatVector.broadcast(F, dl), acc);
                acc = x0.add(x1).fma(FloatVector.broadcast(F, -ml), acc);
            }
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    static void dequantQ2Q3(MemorySegment w, long wOff, int blocks, float[] dst, int dstOff, boolean q3) {
        int bytes = q3 ? BlockLayouts.Q3_K_BYTES : BlockLayouts.Q2_K_BYTES;
        int qsOff = q3 ? BlockLayouts.Q3_K_QS : BlockLayouts.Q2_K_QS;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * bytes;
            float d = BlockLayouts.f16(w, blk + (q3 ? BlockLayouts.Q3_K_D : BlockLayouts.Q2_K_D));
            float dmin = q3 ? 0f : BlockLayouts.f16(w, blk + BlockLayouts.Q2_K_DMIN);
            for (int run = 0; run < 16; run++) {
                int n = run >> 3;
                int j = (run >> 1) & 3;
                int half = run & 1;
                long q = blk + qsOff + 32L * n + 16L * half;
                int o = dstOff + 256 * b + 128 * n + 32 * j + 16 * half;
                var i0 = ((IntVector) ByteVector.fromMemorySegment(B64, w, q, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .lanewise(VectorOperators.LSHR, 2 * j).and(3);
                var i1 = ((IntVector) ByteVector.fromMemorySegment(B64, w, q + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .lanewise(VectorOperators.LSHR, 2 * j).and(3);
                float dl;
                float ml;
                if (q3) {
                    long hm = blk + 16L * half;
                    int bit = 4 * n + j;
                    i0 = i0.add(((IntVector) ByteVector.fromMemorySegment(B64, w, hm, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                            .lanewise(VectorOperators.LSHR, bit).and(1).lanewise(VectorOperators.LSHL, 2));
                    i1 = i1.add(((IntVector) ByteVector.fromMemorySegment(B64, w, hm + 8, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                            .lanewise(VectorOperators.LSHR, bit).and(1).lanewise(VectorOperators.LSHL, 2));
                    dl = d * (BlockLayouts.q3kScale(w, blk, run) - 32);
                    ml = 4 * dl;
                } else {
                    int sc = BlockLayouts.u8(w, blk + run);
                    dl = d * (sc & 0xF);
                    ml = dmin * (sc >> 4);
                }
                var vd = FloatVector.broadcast(F, dl);
                var vm = FloatVector.broadcast(F, -ml);
                ((FloatVector) i0.convert(VectorOperators.I2F, 0)).fma(vd, vm).intoArray(dst, o);
                ((FloatVector) i1.convert(VectorOperators.I2F, 0)).fma(vd, vm).intoArray(dst, o + 8);
            }
        }
    }

    /** {@code y[t][r] = dotQ5_K(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ5_K(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ5_K(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }

    /** {@code y[t][r] = dotQ2Q3(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ2_K(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ2Q3(w, r * rowBytes, x, t * xStride, cols, false));
            }
        }
    }

    /** {@code y[t][r] = dotQ2Q3(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ3_K(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ2Q3(w, r * rowBytes, x, t * xStride, cols, true));
            }
        }
    }
}
