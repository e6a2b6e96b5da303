package aether.device.cpu.kernel;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The f32 register-blocked micro-kernel of the prefill GEMM: 2 weight rows × 4 tokens, 8 accumulators. Each step
 * loads 2 weight vectors and 4 activation vectors for 8 FMAs, so it is FMA-bound rather than load-bound on a
 * 2-load/cycle core, and uses 8 + 2 + 1 of the 16 AVX2 registers (3×4 spills on C2). Quantized weights reach it
 * already dequantized into a small per-thread scratch that stays in L2, so the dequantization cost is paid once per
 * row block and shared by every token.
 */
final class GemmTile {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private GemmTile() {}

    /**
     * out[r * 4 + t] = dot(w row r, x row t) over {@code k} floats, for r in {0,1} and t in {0..3}. Rows and tokens
     * may repeat (tails): the caller keeps only the outputs it needs.
     */
    static void tile2x4(MemorySegment w, long w0, long w1, MemorySegment x, long x0, long x1, long x2, long x3,
                        int k, float[] out) {
        var a00 = FloatVector.zero(F);
        var a01 = FloatVector.zero(F);
        var a02 = FloatVector.zero(F);
        var a03 = FloatVector.zero(F);
        var a10 = FloatVector.zero(F);
        var a11 = FloatVector.zero(F);
        var a12 = FloatVector.zero(F);
        var a13 = FloatVector.zero(F);
        int i = 0;
        for (int bound = k - k % 8; i < bound; i += 8) {
            long o = 4L * i;
            var r0 = FloatVector.fromMemorySegment(F, w, w0 + o, LE);
            var r1 = FloatVector.fromMemorySegment(F, w, w1 + o, LE);
            var v = FloatVector.fromMemorySegment(F, x, x0 + o, LE);
            a00 = r0.fma(v, a00);
            a10 = r1.fma(v, a10);
            v = FloatVector.fromMemorySegment(F, x, x1 + o, LE);
            a01 = r0.fma(v, a01);
            a11 = r1.fma(v, a11);
            v = FloatVector.fromMemorySegment(F, x, x2 + o, LE);
            a02 = r0.fma(v, a02);
            a12 = r1.fma(v, a12);
            v = FloatVector.fromMemorySegment(F, x, x3 + o, LE);
            a03 = r0.fma(v, a03);
            a13 = r1.fma(v, a13);
        }
        out[0] = a00.reduceLanes(VectorOperators.ADD);
        out[1] = a01.reduceLanes(VectorOperators.ADD);
        out[2] = a02.reduceLanes(VectorOperators.ADD);
        out[3] = a03.reduceLanes(VectorOperators.ADD);
        out[4] = a10.reduceLanes(VectorOperators.ADD);
        out[5] = a11.reduceLanes(VectorOperators.ADD);
        out[6] = a12.reduceLanes(VectorOperators.ADD);
        out[7] = a13.reduceLanes(VectorOperators.ADD);
        for (; i < k; i++) {
            long o = 4L * i;
            float r0 = w.get(BlockLayouts.F32, w0 + o);
            float r1 = w.get(BlockLayouts.F32, w1 + o);
            float v0 = x.get(BlockLayouts.F32, x0 + o);
            float v1 = x.get(BlockLayouts.F32, x1 + o);
            float v2 = x.get(BlockLayouts.F32, x2 + o);
            float v3 = x.get(BlockLayouts.F32, x3 + o);
            out[0] += r0 * v0;
            out[1] += r0 * v1;
            out[2] += r0 * v2;
            out[3] += r0 * v3;
            out[4] += r1 * v0;
            out[5] += r1 * v1;
            out[6] += r1 * v2;
            out[7] += r1 * v3;
        }
    }
}
