package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.Q8_0_BYTES;
import static aether.device.cpu.kernel.BlockLayouts.Q8_0_QS;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Vector kernels for Q8_0 weights (block: f16 d, 32 int8; value = d·q). */
final class Q8_0Kernels {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Q8_0Kernels() {}

    /**
     * Float path: each group of 8 int8 widened straight to 8 floats (vpmovsxbd + vcvtdq2ps) and FMA'd with x. Written
     * out inline with no vector-typed helper (see {@link Q4_0Kernels} for why).
     */
    static float dot(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        var acc = FloatVector.zero(F);
        int blocks = cols / 32;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q8_0_BYTES;
            long q = blk + Q8_0_QS;
            long xb = xOff + b * 128L;
            var p = ((FloatVector) ByteVector.fromMemorySegment(B64, w, q, LE).convertShape(VectorOperators.B2F, F, 0))
                    .mul(FloatVector.fromMemorySegment(F, x, xb, LE));
            p = ((FloatVector) ByteVector.fromMemorySegment(B64, w, q + 8, LE).convertShape(VectorOperators.B2F, F, 0))
                    .fma(FloatVector.fromMemorySegment(F, x, xb + 32, LE), p);
            p = ((FloatVector) ByteVector.fromMemorySegment(B64, w, q + 16, LE).convertShape(VectorOperators.B2F, F, 0))
                    .fma(FloatVector.fromMemorySegment(F, x, xb + 64, LE), p);
            p = ((FloatVector) ByteVector.fromMemorySegment(B64, w, q + 24, LE).convertShape(VectorOperators.B2F, F, 0))
                    .fma(FloatVector.fromMemorySegment(F, x, xb + 96, LE), p);
            acc = p.fma(FloatVector.broadcast(F, BlockLayouts.f16(w, blk)), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /**
     * Int8 path against {@link Q8Activations}, in 16-bit lanes: the block's 32 weights widened to two vectors of 16
     * shorts (vpmovsxbw), multiplied by the activations' int16 copy straight from memory (vpmullw) and added:
     * |q·q| ≤ 128·127 and the sum of two ≤ 32512 still fits a short. The 16 pair sums are folded into 8 int lanes
     * ({@code (v << 16 >> 16) + (v >> 16)} on the int view, AVX2 having no vpmaddwd in the Vector API), converted
     * once and FMA'd with d_w·d_x. Exact integer block sums, like ggml's {@code isum}. ~18 vector µops per block
     * against ~21 for the float path (measured ~25% faster per weight byte on one core).
     *
     * <p>Stays 256-bit on AVX-512: a 512-bit version (one vpmovsxbw zmm of the block's 32 bytes, one vpmullw zmm
     * against 32 int16 activations, fold and convert once per block) raced at 0.87× this kernel on one thread and
     * 0.88× on two ([1,4096]×[4096,14336], KernelRace, same JVM, EPYC Zen 4, load ~4); this one already reads at
     * 0.92-0.97 of the probe's bandwidth there. Raced again against the multi-row form ({@link Q8_0BatchKernels}, what
     * decode runs) at the 1B model's shapes ({@code Q8_0WideRace}, one core): 1.01× for one token with the weights in
     * L2, 0.69× streaming [8192×2048], 0.84-0.88× for 4 tokens. Per block and token the 512-bit form has 6 zmm µops
     * against 8 ymm ones, but Zen 4 runs each zmm µop as two 256-bit halves; the 256-bit kernel sums two products
     * in 16-bit lanes before its fold, which a 32-lane product of one block cannot do without a cross-lane shuffle.
     */
    static float dotQ8(MemorySegment w, long wOff, MemorySegment xq, long xqOff, int cols) {
        int blocks = cols / 32;
        long qs = xqOff + Q8Activations.quants16Offset(cols);
        var acc = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            long q = wOff + (long) b * Q8_0_BYTES + Q8_0_QS;
            long a = qs + b * 64L;
            var w0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q, LE).convertShape(VectorOperators.B2S, S256, 0);
            var w1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q + 16, LE).convertShape(VectorOperators.B2S, S256, 0);
            var v = w0.mul(ShortVector.fromMemorySegment(S256, xq, a, LE))
                    .add(w1.mul(ShortVector.fromMemorySegment(S256, xq, a + 32, LE))).reinterpretAsInts();
            var i = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v.lanewise(VectorOperators.ASHR, 16));
            float scale = Float.float16ToFloat(w.get(BlockLayouts.I16, q - Q8_0_QS)) * xq.get(BlockLayouts.F32, xqOff + 4L * b);
            acc = ((FloatVector) i.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, scale), acc);
        }
        // lanes summed in a fixed order, the same in every JIT tier (LaneSums)
        acc = acc.add(acc.rearrange(LaneSums.HALVES));
        acc = acc.add(acc.rearrange(LaneSums.QUARTERS));
        return acc.add(acc.rearrange(LaneSums.PAIRS)).lane(0);
    }

    /** Dequantizes {@code blocks} blocks at {@code w[wOff]} to floats at {@code dst[dstOff]}. */
    static void dequant(MemorySegment w, long wOff, int blocks, float[] dst, int dstOff) {
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * Q8_0_BYTES;
            int o = dstOff + 32 * b;
            var d = FloatVector.broadcast(F, BlockLayouts.f16(w, blk));
            for (int k = 0; k < 4; k++) {
                ((FloatVector) ByteVector.fromMemorySegment(B64, w, blk + Q8_0_QS + 8 * k, LE)
                        .convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(dst, o + 8 * k);
            }
        }
    }

    /** {@code y[t][r] = dot(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rows(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dot(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }

    /** {@code y[t][r] = dotQ8(W[r], x[t])} for rows [from, to) and every token: the decode loop, one compile unit. */
    static void rowsQ8(MemorySegment w, long rowBytes, int from, int to, MemorySegment x, long xStride, int tokens,
                     int cols, MemorySegment y, long yStride) {
        for (int r = from; r < to; r++) {
            for (int t = 0; t < tokens; t++) {
                y.set(BlockLayouts.F32, t * yStride + 4L * r, dotQ8(w, r * rowBytes, x, t * xStride, cols));
            }
        }
    }
}
