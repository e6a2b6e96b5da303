package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q4_K_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q4_K_QS;
import static aether.device.cpu.kernel.BlockLayouts.Q4_K_SCALES;
import static aether.device.cpu.kernel.BlockLayouts.Q5_K_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q5_K_QH;
import static aether.device.cpu.kernel.BlockLayouts.Q5_K_QS;
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
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Integer decode kernels for the K-quants Q4_K, Q5_K and Q6_K against Q8_K activations
 * ({@link Q8Activations#quantizeRowQ8K}: int16 quants, one f32 scale per 256 and the sum of every 32 quants), the
 * pairing llama.cpp's CPU backend uses for these types. Per super-block everything up to the last step is integer
 * and exact: 16 quants at a time land in 16-bit lanes (Q4_K: a plain load of 32 bytes read as shorts; Q5_K/Q6_K:
 * zero-extended bytes, vpmovzxbw), are cut into nibbles/5-/6-bit values,
 * multiplied by the activations in 16-bit lanes (vpmullw; |product| ≤ 15·127 for Q4_K, 31·127 for Q5_K, 32·127 for
 * Q6_K's q − 32, and the at most four summed per lane before the fold stay below 2¹⁵),
 * lane pairs folded into ints by shifts (Java's Vector API on AVX2 reaches no vpmaddwd/vpmaddubsw), multiplied by the
 * sub-block's integer scale (vpmulld) and summed into one int vector per super-block. Then one conversion and one
 * FMA with {@code d·d_x}: the float work per 256 weights is two vector µops, where the float-path kernels
 * ({@link KQuantKernels}) convert and FMA every weight. Q4_K/Q5_K's mins enter through the activation sums
 * (the eight 6-bit mins widened into one int vector, times the eight sums, one FMA into a float vector per
 * super-block; as eight scalar products they made the kernel's scalar work its bottleneck: 1.3× on one core):
 * {@code -dmin·d_x·Σ_s min_s·Σ(a in s)}.
 *
 * <p>As in {@link Q4_0Kernels}, no helper takes or returns a vector (C2 would box it once the unit grows past its
 * inlining cutoff), so the bodies are written out.
 */
final class KQuantQ8Kernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    static final VectorSpecies<Short> S512 = ShortVector.SPECIES_512;
    static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    /** Two longs: the eight 6-bit mins of a super-block broadcast as bytes (a 64-bit species is not intrinsified: 4× slower). */
    static final VectorSpecies<Long> L128 = LongVector.SPECIES_128;
    /** Q4_K, 512-bit: lanes 0-7 take scale s, 8-15 scale s + 2 (sub-blocks of groups 2p and 2p+1). */
    static final VectorShuffle<Integer> SC0 = scalePair(0, 2);
    static final VectorShuffle<Integer> SC1 = scalePair(1, 2);
    static final VectorShuffle<Integer> SC4 = scalePair(4, 2);
    static final VectorShuffle<Integer> SC5 = scalePair(5, 2);
    /** Q6_K, 512-bit: lanes 0-7 take scale s, 8-15 scale s + 1 (the two 16-position halves). */
    static final VectorShuffle<Integer> SQ0 = scalePair(0, 1);
    static final VectorShuffle<Integer> SQ2 = scalePair(2, 1);
    static final VectorShuffle<Integer> SQ4 = scalePair(4, 1);
    static final VectorShuffle<Integer> SQ6 = scalePair(6, 1);

    private static VectorShuffle<Integer> scalePair(int s, int step) {
        int[] idx = new int[16];
        for (int i = 0; i < 16; i++) {
            idx[i] = i < 8 ? s : s + step;
        }
        return VectorShuffle.fromArray(I512, idx, 0);
    }

    private KQuantQ8Kernels() {}

    /**
     * Σ W[row]·x for one Q4_K row of {@code blocks} super-blocks at {@code w[wOff]} and one Q8_K activation row in
     * even/odd order ({@link Q8KRows#aqEo} at {@code eo[aOff]}, {@code dk[dOff]}, {@code bs[bsOff]}). The 32 quant
     * bytes of a sub-block pair are read as 16 little-endian shorts (a plain load, no widening), lane k holding
     * elements 2k and 2k+1 of both sub-blocks in its four nibbles, so the activations come in even/odd order; lane
     * pairs fold in three ops, {@code (v + (v << 16)) >> 16} (the upper half of the sum is the pair's sum mod 2¹⁶,
     * exact as |sum| ≤ 4·15·127). Measured 1.35× the ggml-order form (two widening loads, four-op fold) on one core.
     */
    static float dotQ4_K(MemorySegment w, long wOff, short[] eo, int aOff, float[] dk, int dOff, int[] bs, int bsOff,
                           int blocks) {
        var acc = FloatVector.zero(F);
        var macc = FloatVector.zero(F);           // dmin·d_x·min_s·Σ(a in s), per sub-block lane
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_K_BYTES;
            float dx = dk[dOff + b];
            float dd = Float.float16ToFloat(w.get(BlockLayouts.I16, blk)) * dx;
            float dm = Float.float16ToFloat(w.get(BlockLayouts.I16, blk + 2)) * dx;
            int a0 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES);
            int a1 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES + 4);
            int a2 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES + 8);
            int sl = a0 & 0x3f3f3f3f;
            int sh = (a2 & 0x0f0f0f0f) | (((a0 >>> 6) & 0x03030303) << 4);
            int ml = a1 & 0x3f3f3f3f;
            int mh = ((a2 >>> 4) & 0x0f0f0f0f) | (((a1 >>> 6) & 0x03030303) << 4);
            var m8 = (IntVector) LongVector.broadcast(L128, (ml & 0xFFFFFFFFL) | ((long) mh << 32)).reinterpretAsBytes()
                    .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            macc = ((FloatVector) m8.mul(IntVector.fromArray(I, bs, bsOff + 8 * b)).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dm), macc);
            int ab = aOff + 256 * b;
            var isum = IntVector.zero(I);
            for (int g = 0; g < 4; g++) {
                int a = ab + 64 * g;      // sub-block 2g: even elements, odd elements; then sub-block 2g+1 likewise
                int sc = g < 2 ? sl >>> (16 * g) : sh >>> (16 * (g - 2));
                var q = ShortVector.fromMemorySegment(S256, w, blk + Q4_K_QS + 32L * g, LE);
                var lo = q.and((short) 0xF).mul(ShortVector.fromArray(S256, eo, a))
                        .add(q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S256, eo, a + 16)))
                        .reinterpretAsInts();
                var hi = q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S256, eo, a + 32))
                        .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S256, eo, a + 48)))
                        .reinterpretAsInts();
                isum = isum.add(lo.add(lo.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul(sc & 0xFF));
                isum = isum.add(hi.add(hi.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul((sc >>> 8) & 0xFF));
            }
            acc = ((FloatVector) isum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, dd), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        macc = macc.add(macc.rearrange(LaneSums.HALVES));
        macc = macc.add(macc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0) - macc.add(macc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /**
     * The 512-bit form of {@link #dotQ4_K}: one plain 64-byte load covers two sub-block pairs (group 2p in short lanes
     * 0-15, group 2p+1 in lanes 16-31), against activations in {@link Q8KRows#aqWide} order, so a super-block is two
     * iterations instead of four. After the fold, int lanes 0-7 hold the first group's sub-block and 8-15 the
     * second's, so each fold is multiplied by a vector of two scales, one per half: the eight scales are widened once
     * per super-block into both halves of an int vector and each pair picked by a constant shuffle (vpermd; 1.10× the
     * form that broadcast two scalar scales and blended them, which is also 1.49× the 256-bit kernel).
     */
    static float dotQ4_KWide(MemorySegment w, long wOff, short[] aw, int aOff, float[] dk, int dOff, int[] bs, int bsOff,
                             int blocks) {
        var acc = FloatVector.zero(F512);
        var macc = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q4_K_BYTES;
            float dx = dk[dOff + b];
            float dd = Float.float16ToFloat(w.get(BlockLayouts.I16, blk)) * dx;
            float dm = Float.float16ToFloat(w.get(BlockLayouts.I16, blk + 2)) * dx;
            int a0 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES);
            int a1 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES + 4);
            int a2 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES + 8);
            int sl = a0 & 0x3f3f3f3f;
            int sh = (a2 & 0x0f0f0f0f) | (((a0 >>> 6) & 0x03030303) << 4);
            int ml = a1 & 0x3f3f3f3f;
            int mh = ((a2 >>> 4) & 0x0f0f0f0f) | (((a1 >>> 6) & 0x03030303) << 4);
            var m8 = (IntVector) LongVector.broadcast(L128, (ml & 0xFFFFFFFFL) | ((long) mh << 32)).reinterpretAsBytes()
                    .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            macc = ((FloatVector) m8.mul(IntVector.fromArray(I, bs, bsOff + 8 * b)).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dm), macc);
            // the eight scales as ints, twice: lanes 0-7 and 8-15 (one 128-bit broadcast, one widening)
            var s16 = (IntVector) LongVector.broadcast(L128, (sl & 0xFFFFFFFFL) | ((long) sh << 32)).reinterpretAsBytes()
                    .convertShape(VectorOperators.ZERO_EXTEND_B2I, I512, 0);
            int ab = aOff + 256 * b;
            var isum = IntVector.zero(I512);
            for (int p = 0; p < 2; p++) {
                int a = ab + 128 * p;     // slots of 32: even/odd of sub-blocks 4p|4p+2, then even/odd of 4p+1|4p+3
                var q = ShortVector.fromMemorySegment(S512, w, blk + Q4_K_QS + 64L * p, LE);
                var lo = q.and((short) 0xF).mul(ShortVector.fromArray(S512, aw, a))
                        .add(q.lanewise(VectorOperators.LSHR, 8).and((short) 0xF).mul(ShortVector.fromArray(S512, aw, a + 32)))
                        .reinterpretAsInts();
                var hi = q.lanewise(VectorOperators.LSHR, 4).and((short) 0xF).mul(ShortVector.fromArray(S512, aw, a + 64))
                        .add(q.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S512, aw, a + 96)))
                        .reinterpretAsInts();
                var sLo = s16.rearrange(p == 0 ? SC0 : SC4);
                var sHi = s16.rearrange(p == 0 ? SC1 : SC5);
                isum = isum.add(lo.add(lo.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul(sLo));
                isum = isum.add(hi.add(hi.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul(sHi));
            }
            acc = ((FloatVector) isum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, dd), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES_512));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS_512));
        acc = acc.add(acc.rearrange(LaneSums.EIGHTHS_512));
        macc = macc.add(macc.rearrange(LaneSums.HALVES));
        macc = macc.add(macc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS_512)).lane(0) - macc.add(macc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /**
     * Q5_K: the sub-block walk of {@link #dotQ4_K}, in ggml element order (widening loads), with the fifth bit of each quant from qh (bit s of byte l for element l of sub-block s),
     * moved to bit 4 by one shift of qh·16 and a mask.
     */
    static float dotQ5_K(MemorySegment w, long wOff, short[] aq, int aOff, float[] dk, int dOff, int[] bs, int bsOff,
                         int blocks) {
        var acc = FloatVector.zero(F);
        var macc = FloatVector.zero(F);           // dmin·d_x·min_s·Σ(a in s), per sub-block lane
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q5_K_BYTES;
            float dx = dk[dOff + b];
            float dd = Float.float16ToFloat(w.get(BlockLayouts.I16, blk)) * dx;
            float dm = Float.float16ToFloat(w.get(BlockLayouts.I16, blk + 2)) * dx;
            int a0 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES);
            int a1 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES + 4);
            int a2 = w.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q4_K_SCALES + 8);
            int sl = a0 & 0x3f3f3f3f;
            int sh = (a2 & 0x0f0f0f0f) | (((a0 >>> 6) & 0x03030303) << 4);
            int ml = a1 & 0x3f3f3f3f;
            int mh = ((a2 >>> 4) & 0x0f0f0f0f) | (((a1 >>> 6) & 0x03030303) << 4);
            var m8 = (IntVector) LongVector.broadcast(L128, (ml & 0xFFFFFFFFL) | ((long) mh << 32)).reinterpretAsBytes()
                    .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            macc = ((FloatVector) m8.mul(IntVector.fromArray(I, bs, bsOff + 8 * b)).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, dm), macc);
            int ab = aOff + 256 * b;
            // qh bytes 0-15 and 16-31, times 16: bit s of a byte lands on bit 4 after a right shift by s
            var h0 = ((ShortVector) ByteVector.fromMemorySegment(B128, w, blk + Q5_K_QH, LE)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, S256, 0)).lanewise(VectorOperators.LSHL, 4);
            var h1 = ((ShortVector) ByteVector.fromMemorySegment(B128, w, blk + Q5_K_QH + 16, LE)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, S256, 0)).lanewise(VectorOperators.LSHL, 4);
            var isum = IntVector.zero(I);
            for (int g = 0; g < 4; g++) {
                long q = blk + Q5_K_QS + 32L * g;
                int a = ab + 64 * g;
                int sc = g < 2 ? sl >>> (16 * g) : sh >>> (16 * (g - 2));
                int s = 2 * g;
                var q0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S256, 0);
                var q1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q + 16, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S256, 0);
                var lo = q0.and((short) 0xF).or(h0.lanewise(VectorOperators.LSHR, s).and((short) 0x10))
                        .mul(ShortVector.fromArray(S256, aq, a))
                        .add(q1.and((short) 0xF).or(h1.lanewise(VectorOperators.LSHR, s).and((short) 0x10))
                                .mul(ShortVector.fromArray(S256, aq, a + 16))).reinterpretAsInts();
                var hi = q0.lanewise(VectorOperators.LSHR, 4).or(h0.lanewise(VectorOperators.LSHR, s + 1).and((short) 0x10))
                        .mul(ShortVector.fromArray(S256, aq, a + 32))
                        .add(q1.lanewise(VectorOperators.LSHR, 4).or(h1.lanewise(VectorOperators.LSHR, s + 1).and((short) 0x10))
                                .mul(ShortVector.fromArray(S256, aq, a + 48))).reinterpretAsInts();
                isum = isum.add(lo.add(lo.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul(sc & 0xFF));
                isum = isum.add(hi.add(hi.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul((sc >>> 8) & 0xFF));
            }
            acc = ((FloatVector) isum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, dd), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        macc = macc.add(macc.rearrange(LaneSums.HALVES));
        macc = macc.add(macc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0) - macc.add(macc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /**
     * Q6_K: per half (128 elements) and per 16 positions l, one load each of ql[l], ql[l+32] and qh[l] gives the four
     * 16-element sub-blocks l, l+32, l+64, l+96 (low/high nibbles, bit pairs of qh at bit 4); minus 32, times the
     * activations, folded, times the sub-block's int8 scale.
     */
    static float dotQ6_K(MemorySegment w, long wOff, short[] aq, int aOff, float[] dk, int dOff, int blocks) {
        var acc = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q6_K_BYTES;
            float dd = Float.float16ToFloat(w.get(BlockLayouts.I16, blk + Q6_K_D)) * dk[dOff + b];
            var isum = IntVector.zero(I);
            for (int h = 0; h < 2; h++) {
                long ql = blk + 64L * h;
                long qh = blk + Q6_K_QH + 32L * h;
                long sc = w.get(ValueLayout.JAVA_LONG_UNALIGNED, blk + Q6_K_SCALES + 8L * h);   // 8 int8 scales
                for (int is = 0; is < 2; is++) {
                    int l = 16 * is;
                    int a = aOff + 256 * b + 128 * h + l;
                    var lo = (ShortVector) ByteVector.fromMemorySegment(B128, w, ql + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S256, 0);
                    var hi = (ShortVector) ByteVector.fromMemorySegment(B128, w, ql + l + 32, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S256, 0);
                    var hb = (ShortVector) ByteVector.fromMemorySegment(B128, w, qh + l, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S256, 0);
                    var p1 = lo.and((short) 0xF).or(hb.lanewise(VectorOperators.LSHL, 4).and((short) 0x30)).sub((short) 32)
                            .mul(ShortVector.fromArray(S256, aq, a)).reinterpretAsInts();
                    var p2 = hi.and((short) 0xF).or(hb.lanewise(VectorOperators.LSHL, 2).and((short) 0x30)).sub((short) 32)
                            .mul(ShortVector.fromArray(S256, aq, a + 32)).reinterpretAsInts();
                    var p3 = lo.lanewise(VectorOperators.LSHR, 4).or(hb.and((short) 0x30)).sub((short) 32)
                            .mul(ShortVector.fromArray(S256, aq, a + 64)).reinterpretAsInts();
                    var p4 = hi.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 2).and((short) 0x30)).sub((short) 32)
                            .mul(ShortVector.fromArray(S256, aq, a + 96)).reinterpretAsInts();
                    isum = isum.add(p1.add(p1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul((int) (byte) (sc >>> (8 * is))));
                    isum = isum.add(p2.add(p2.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul((int) (byte) (sc >>> (8 * (is + 2)))));
                    isum = isum.add(p3.add(p3.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul((int) (byte) (sc >>> (8 * (is + 4)))));
                    isum = isum.add(p4.add(p4.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16).mul((int) (byte) (sc >>> (8 * (is + 6)))));
                }
            }
            acc = ((FloatVector) isum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, dd), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /**
     * The 512-bit form of {@link #dotQ6_K}: one widening load of 32 bytes covers both 16-position halves {@code is}
     * of the 256-bit loop, whose activations are contiguous in element order, so a super-block is two iterations of
     * four products; after the fold, int lanes 0-7 take the scale of sub-block {@code is = 0}, 8-15 that of 1: the
     * eight int8 scales of a half are widened once into an int vector and each pair picked by a constant shuffle
     * (1.19× the form that broadcast two scalar scales and blended them).
     */
    static float dotQ6_KWide(MemorySegment w, long wOff, short[] aq, int aOff, float[] dk, int dOff, int blocks) {
        var acc = FloatVector.zero(F512);
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q6_K_BYTES;
            float dd = Float.float16ToFloat(w.get(BlockLayouts.I16, blk + Q6_K_D)) * dk[dOff + b];
            var isum = IntVector.zero(I512);
            for (int h = 0; h < 2; h++) {
                long ql = blk + 64L * h;
                long qh = blk + Q6_K_QH + 32L * h;
                long sc = w.get(ValueLayout.JAVA_LONG_UNALIGNED, blk + Q6_K_SCALES + 8L * h);   // 8 int8 scales
                int a = aOff + 256 * b + 128 * h;
                var s16 = (IntVector) LongVector.broadcast(L128, sc).reinterpretAsBytes()
                        .convertShape(VectorOperators.B2I, I512, 0);
                var lo = (ShortVector) ByteVector.fromMemorySegment(B256, w, ql, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S512, 0);
                var hi = (ShortVector) ByteVector.fromMemorySegment(B256, w, ql + 32, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S512, 0);
                var hb = (ShortVector) ByteVector.fromMemorySegment(B256, w, qh, LE).convertShape(VectorOperators.ZERO_EXTEND_B2S, S512, 0);
                var p1 = lo.and((short) 0xF).or(hb.lanewise(VectorOperators.LSHL, 4).and((short) 0x30)).sub((short) 32)
                        .mul(ShortVector.fromArray(S512, aq, a)).reinterpretAsInts();
                var p2 = hi.and((short) 0xF).or(hb.lanewise(VectorOperators.LSHL, 2).and((short) 0x30)).sub((short) 32)
                        .mul(ShortVector.fromArray(S512, aq, a + 32)).reinterpretAsInts();
                var p3 = lo.lanewise(VectorOperators.LSHR, 4).or(hb.and((short) 0x30)).sub((short) 32)
                        .mul(ShortVector.fromArray(S512, aq, a + 64)).reinterpretAsInts();
                var p4 = hi.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 2).and((short) 0x30)).sub((short) 32)
                        .mul(ShortVector.fromArray(S512, aq, a + 96)).reinterpretAsInts();
                isum = isum.add(p1.add(p1.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16)
                        .mul(s16.rearrange(SQ0)));
                isum = isum.add(p2.add(p2.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16)
                        .mul(s16.rearrange(SQ2)));
                isum = isum.add(p3.add(p3.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16)
                        .mul(s16.rearrange(SQ4)));
                isum = isum.add(p4.add(p4.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16)
                        .mul(s16.rearrange(SQ6)));
            }
            acc = ((FloatVector) isum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, dd), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES_512));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS_512));
        acc = acc.add(acc.rearrange(LaneSums.EIGHTHS_512));
        return acc.add(acc.rearrange(LaneSums.PAIRS_512)).lane(0);
    }

    /** {@code y[t][r] = dotQ4_K(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ4_K(MemorySegment w, long rowBytes, int from, int to, Q8KRows x, int tokens, MemorySegment y, long yStride) {
        int blocks = x.blocks;
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r,
                        dotQ4_K(w, r * rowBytes, x.aqEo, t * 256 * blocks, x.dk, t * blocks, x.bs, t * 8 * blocks, blocks));
            }
        }
    }

    /** {@link #rowsQ4_K} with {@link #dotQ4_KWide} (512-bit), reading {@link Q8KRows#aqWide}. */
    static void rowsQ4_KWide(MemorySegment w, long rowBytes, int from, int to, Q8KRows x, int tokens, MemorySegment y, long yStride) {
        int blocks = x.blocks;
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r,
                        dotQ4_KWide(w, r * rowBytes, x.aqWide, t * 256 * blocks, x.dk, t * blocks, x.bs, t * 8 * blocks, blocks));
            }
        }
    }

    /** {@code y[t][r] = dotQ5_K(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ5_K(MemorySegment w, long rowBytes, int from, int to, Q8KRows x, int tokens, MemorySegment y, long yStride) {
        int blocks = x.blocks;
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ5_K(w, r * rowBytes, x.aq, t * 256 * blocks, x.dk, t * blocks,
                        x.bs, t * 8 * blocks, blocks));
            }
        }
    }

    /** {@code y[t][r] = dotQ6_K(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ6_K(MemorySegment w, long rowBytes, int from, int to, Q8KRows x, int tokens, MemorySegment y, long yStride) {
        int blocks = x.blocks;
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ6_K(w, r * rowBytes, x.aq, t * 256 * blocks, x.dk, t * blocks, blocks));
            }
        }
    }

    /** {@link #rowsQ6_K} with {@link #dotQ6_KWide} (512-bit). */
    static void rowsQ6_KWide(MemorySegment w, long rowBytes, int from, int to, Q8KRows x, int tokens, MemorySegment y, long yStride) {
        int blocks = x.blocks;
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ6_KWide(w, r * rowBytes, x.aq, t * 256 * blocks, x.dk, t * blocks, blocks));
            }
        }
    }
}
