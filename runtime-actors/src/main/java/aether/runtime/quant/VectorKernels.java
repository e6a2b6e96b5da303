package aether.runtime.quant;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API dequantization, bit-identical to the codecs' scalar loops: every integer step is exact and each float
 * result comes from the same single multiply (and, for the {@code _1} types, the same separate add; never an FMA,
 * which would round once instead of twice). Written for 8 float lanes (256 bits): a 32-element block is four float
 * vectors. Only loaded when {@link Vectorization} allows it, so the scalar codecs work without the incubator module.
 *
 * <p>Int8 and nibble lanes are always loaded 8 bytes at a time and widened from lane part 0 ({@code B64 -> F256/I256}):
 * widening parts 1-3 of a wider byte vector measured about 3x slower in JDK 25. Smoke figures (JMH DequantBenchmark,
 * 4096 elements off-heap, ops/us vector vs scalar, busy 2-core AVX2 box, so ratios only): Q8_0 0.6-1.7 vs 0.16,
 * Q4_0 0.75 vs 0.07, Q4_1 0.62 vs 0.11, Q5_0 1.24 vs 0.03, Q5_1 0.87 vs 0.05, BF16 1.0 vs 0.11.
 */
final class VectorKernels {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_128;   // 8 bf16 -> 8 floats
    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;    // 8 int8 -> 8 floats
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Bit index in {@code qh} of each lane's fifth bit, for elements 0-7, 8-15, 16-23, 24-31 of a Q5 block. */
    private static final IntVector[] QH_SHIFTS = {
        IntVector.fromArray(I, new int[] {0, 1, 2, 3, 4, 5, 6, 7}, 0),
        IntVector.fromArray(I, new int[] {8, 9, 10, 11, 12, 13, 14, 15}, 0),
        IntVector.fromArray(I, new int[] {16, 17, 18, 19, 20, 21, 22, 23}, 0),
        IntVector.fromArray(I, new int[] {24, 25, 26, 27, 28, 29, 30, 31}, 0),
    };

    private VectorKernels() {}

    /** bf16 to f32: widen to int lanes and shift into the upper half (the sign-extended bits shift out). */
    static void bf16(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        int i = 0;
        for (int bound = F.loopBound(count); i < bound; i += F.length()) {
            ShortVector h = ShortVector.fromMemorySegment(S, src, srcOffset + (long) i * Short.BYTES, LE);
            IntVector x = (IntVector) h.convertShape(VectorOperators.S2I, I, 0);
            x.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, dstIndex + i);
        }
        for (; i < count; i++) {
            dst[dstIndex + i] = CFloat.bf16ToFloat(src.get(LittleEndian.SHORT, srcOffset + (long) i * Short.BYTES));
        }
    }

    static void q8_0(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int blocks) {
        for (int b = 0; b < blocks; b++) {
            long block = srcOffset + (long) b * Q8_0Codec.BLOCK_BYTES;
            int out = dstIndex + b * Q8_0Codec.BLOCK_SIZE;
            FloatVector d = FloatVector.broadcast(F, LittleEndian.f16(src, block + Q8_0Codec.D_OFFSET));
            for (int k = 0; k < Q8_0Codec.BLOCK_SIZE; k += F.length()) {
                ByteVector q = ByteVector.fromMemorySegment(B64, src, block + Q8_0Codec.QS_OFFSET + k, LE);
                ((FloatVector) q.convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(dst, out + k);
            }
        }
    }

    static void q4_0(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int blocks) {
        for (int b = 0; b < blocks; b++) {
            long block = srcOffset + (long) b * Q4_0Codec.BLOCK_BYTES;
            int out = dstIndex + b * Q4_0Codec.BLOCK_SIZE;
            FloatVector d = FloatVector.broadcast(F, LittleEndian.f16(src, block + Q4_0Codec.D_OFFSET));
            // Two 8-byte loads, each widened from lane part 0 (the fast B64 -> F256 conversion Q8_0 uses):
            // bytes 0-7 hold elements 0-7 (low nibbles) and 16-23 (high), bytes 8-15 elements 8-15 and 24-31.
            for (int half = 0; half < 2; half++) {
                ByteVector qs = ByteVector.fromMemorySegment(B64, src, block + Q4_0Codec.QS_OFFSET + 8 * half, LE);
                ByteVector lo = qs.and((byte) 0x0F).sub((byte) 8);
                ByteVector hi = qs.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);   // LSHR on bytes is unsigned
                ((FloatVector) lo.convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(dst, out + 8 * half);
                ((FloatVector) hi.convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(dst, out + 16 + 8 * half);
            }
        }
    }

    static void q4_1(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int blocks) {
        for (int b = 0; b < blocks; b++) {
            long block = srcOffset + (long) b * Q4_1Codec.BLOCK_BYTES;
            int out = dstIndex + b * Q4_1Codec.BLOCK_SIZE;
            FloatVector d = FloatVector.broadcast(F, LittleEndian.f16(src, block + Q4_1Codec.D_OFFSET));
            FloatVector m = FloatVector.broadcast(F, LittleEndian.f16(src, block + Q4_1Codec.M_OFFSET));
            for (int half = 0; half < 2; half++) {
                ByteVector qs = ByteVector.fromMemorySegment(B64, src, block + Q4_1Codec.QS_OFFSET + 8 * half, LE);
                ByteVector lo = qs.and((byte) 0x0F);
                ByteVector hi = qs.lanewise(VectorOperators.LSHR, 4);
                // mul then add, two roundings like the C code: no fma here
                ((FloatVector) lo.convertShape(VectorOperators.B2F, F, 0)).mul(d).add(m).intoArray(dst, out + 8 * half);
                ((FloatVector) hi.convertShape(VectorOperators.B2F, F, 0)).mul(d).add(m).intoArray(dst, out + 16 + 8 * half);
            }
        }
    }

    static void q5_0(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int blocks) {
        for (int b = 0; b < blocks; b++) {
            long block = srcOffset + (long) b * Q5_0Codec.BLOCK_BYTES;
            int out = dstIndex + b * Q5_0Codec.BLOCK_SIZE;
            float d = LittleEndian.f16(src, block + Q5_0Codec.D_OFFSET);
            int qh = src.get(LittleEndian.INT, block + Q5_0Codec.QH_OFFSET);
            for (int part = 0; part < 4; part++) {
                lane(src, block + Q5_0Codec.QS_OFFSET + 8 * (part & 1), qh, part, d, 0, false, 16, dst, out);
            }
        }
    }

    static void q5_1(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int blocks) {
        for (int b = 0; b < blocks; b++) {
            long block = srcOffset + (long) b * Q5_1Codec.BLOCK_BYTES;
            int out = dstIndex + b * Q5_1Codec.BLOCK_SIZE;
            float d = LittleEndian.f16(src, block + Q5_1Codec.D_OFFSET);
            float m = LittleEndian.f16(src, block + Q5_1Codec.M_OFFSET);
            int qh = src.get(LittleEndian.INT, block + Q5_1Codec.QH_OFFSET);
            for (int part = 0; part < 4; part++) {
                lane(src, block + Q5_1Codec.QS_OFFSET + 8 * (part & 1), qh, part, d, m, true, 0, dst, out);
            }
        }
    }

    /**
     * One quarter of a Q5 block: 8 nibbles read at {@code qs} (part 0-1: elements 0-15 from low nibbles, 2-3: 16-31
     * from high ones) get their fifth bit from {@code qh}, minus {@code bias}, times {@code d}, plus {@code m} when
     * {@code plusM} (two roundings). It takes scalars and loads its own vectors: a vector argument is boxed whenever C2
     * does not inline the call, and no branch merges two vectors, for the same reason.
     */
    private static void lane(MemorySegment src, long qs, int qh, int part, float d, float m, boolean plusM, int bias,
            float[] dst, int out) {
        ByteVector nibbles = ByteVector.fromMemorySegment(B64, src, qs, LE)
                .lanewise(VectorOperators.LSHR, part < 2 ? 0 : 4).and((byte) 0x0F);   // LSHR on bytes is unsigned
        IntVector q = (IntVector) nibbles.convertShape(VectorOperators.B2I, I, 0);
        IntVector high = IntVector.broadcast(I, qh).lanewise(VectorOperators.LSHR, QH_SHIFTS[part]).and(1)
                .lanewise(VectorOperators.LSHL, 4);
        FloatVector x = ((FloatVector) q.or(high).sub(bias).convert(VectorOperators.I2F, 0)).mul(d);
        if (plusM) {
            x.add(m).intoArray(dst, out + part * 8);
        } else {
            x.intoArray(dst, out + part * 8);
        }
    }
}
