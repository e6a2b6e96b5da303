package aether.device.cpu.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The f32 register-blocked micro-kernel of the prefill GEMM ({@link #tile6x16}). Quantized weights reach it already
 * dequantized into a small per-thread scratch that stays in L2, so the dequantization cost is paid once per row block
 * and shared by every token. (Its first form, a 2 rows × 4 tokens dot-product tile, was replaced by the outer
 * product in 95089c9.)
 */
final class GemmTile {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;

    private GemmTile() {}

    /** Tokens per micro-tile of {@link #tile6x16}: two 8-lane vectors. */
    static final int TOKENS = 16;
    /** Weight rows per micro-tile of {@link #tile6x16}. */
    static final int ROWS = 6;

    /**
     * The outer-product micro-kernel of the prefill GEMM: a 6 weight rows × 16 tokens tile in 12 accumulators. Per k,
     * the 16 tokens' activations are two vector loads from {@code xt} (packed k-major, 16 tokens per k, by the
     * caller) and each of the 6 weights is one broadcast load from the dequantized rows in {@code w}, for 12 FMAs:
     * 8 loads per 12 FMAs, so the FMA pipes rather than the load ports set the pace, and 12 independent chains
     * cover the FMA latency of two pipes. 12 + 2 + 1 of the 16 AVX2 registers (measured ~100 GFLOP/s on one core of
     * the dev machine, its FMA peak). That fit depends on C2's loop strip mining, on by default only with G1, ZGC and
     * Shenandoah: under Parallel or Serial GC (LoopStripMiningIter=0) C2 spills four accumulators to the stack and the
     * tile runs at ~41 GFLOP/s; {@code -XX:+UseCountedLoopSafepoints -XX:LoopStripMiningIter=1000} restores it. 5×16
     * spills the same way; 4×16 does not spill under any GC but tops out at ~68 GFLOP/s (8 chains). Stays 256-bit on
     * AVX-512: a 512-bit 6×16 tile (the 16 tokens one zmm, 6 accumulators, 13 instructions per k instead of 20) raced
     * at 0.73× (Q4_0 weights) and 0.62× (F32) on two threads and 0.73×/0.67× on one ([128,4096]×[4096,4096],
     * {@code GemmRace}, same JVM, EPYC Zen 4, load ~5): Zen 4 executes a 512-bit FMA as two 256-bit halves, so there
     * is no FMA throughput to gain, this tile already runs near one core's 256-bit FMA peak (best ~90-115 GFLOP/s),
     * and a 64-byte load from a heap float[] (16-byte aligned) splits a cache line every time. Nor does an integer
     * tile win on JDK 25 ({@code Int16TileRace}, one core: this tile 57.7 GMAC/s, SuperWord's MulAddVS2VI lane form
     * 24.5, a Vector API int16 outer product 33.0): the Vector API has no pairwise multiply-add, and SuperWord forms
     * one only with its accumulators in memory. No reduction across lanes: the lanes are tokens. Row r's 16 sums go to
     * {@code acc[accOff + r * accStride + t]}, stored when {@code first}, else added.
     *
     * @param w      dequantized weights, row r's k-th element at {@code w[w0 + r * wStride + k]}
     * @param xt     activations, token t's k-th element at {@code xt[x0 + 16 * k + t]}
     * @param k      elements to sum over
     */
    static void tile6x16(float[] w, int w0, int wStride, float[] xt, int x0, int k, float[] acc, int accOff, int accStride,
                         boolean first) {
        var a00 = FloatVector.zero(F);
        var a01 = FloatVector.zero(F);
        var a10 = FloatVector.zero(F);
        var a11 = FloatVector.zero(F);
        var a20 = FloatVector.zero(F);
        var a21 = FloatVector.zero(F);
        var a30 = FloatVector.zero(F);
        var a31 = FloatVector.zero(F);
        var a40 = FloatVector.zero(F);
        var a41 = FloatVector.zero(F);
        var a50 = FloatVector.zero(F);
        var a51 = FloatVector.zero(F);
        int r1 = w0 + wStride;
        int r2 = r1 + wStride;
        int r3 = r2 + wStride;
        int r4 = r3 + wStride;
        int r5 = r4 + wStride;
        for (int i = 0; i < k; i++) {
            int xi = x0 + TOKENS * i;
            var x0v = FloatVector.fromArray(F, xt, xi);
            var x1v = FloatVector.fromArray(F, xt, xi + 8);
            var b = FloatVector.broadcast(F, w[w0 + i]);
            a00 = x0v.fma(b, a00);
            a01 = x1v.fma(b, a01);
            b = FloatVector.broadcast(F, w[r1 + i]);
            a10 = x0v.fma(b, a10);
            a11 = x1v.fma(b, a11);
            b = FloatVector.broadcast(F, w[r2 + i]);
            a20 = x0v.fma(b, a20);
            a21 = x1v.fma(b, a21);
            b = FloatVector.broadcast(F, w[r3 + i]);
            a30 = x0v.fma(b, a30);
            a31 = x1v.fma(b, a31);
            b = FloatVector.broadcast(F, w[r4 + i]);
            a40 = x0v.fma(b, a40);
            a41 = x1v.fma(b, a41);
            b = FloatVector.broadcast(F, w[r5 + i]);
            a50 = x0v.fma(b, a50);
            a51 = x1v.fma(b, a51);
        }
        int o1 = accOff + accStride;
        int o2 = o1 + accStride;
        int o3 = o2 + accStride;
        int o4 = o3 + accStride;
        int o5 = o4 + accStride;
        if (!first) {
            a00 = a00.add(FloatVector.fromArray(F, acc, accOff));
            a01 = a01.add(FloatVector.fromArray(F, acc, accOff + 8));
            a10 = a10.add(FloatVector.fromArray(F, acc, o1));
            a11 = a11.add(FloatVector.fromArray(F, acc, o1 + 8));
            a20 = a20.add(FloatVector.fromArray(F, acc, o2));
            a21 = a21.add(FloatVector.fromArray(F, acc, o2 + 8));
            a30 = a30.add(FloatVector.fromArray(F, acc, o3));
            a31 = a31.add(FloatVector.fromArray(F, acc, o3 + 8));
            a40 = a40.add(FloatVector.fromArray(F, acc, o4));
            a41 = a41.add(FloatVector.fromArray(F, acc, o4 + 8));
            a50 = a50.add(FloatVector.fromArray(F, acc, o5));
            a51 = a51.add(FloatVector.fromArray(F, acc, o5 + 8));
        }
        a00.intoArray(acc, accOff);
        a01.intoArray(acc, accOff + 8);
        a10.intoArray(acc, o1);
        a11.intoArray(acc, o1 + 8);
        a20.intoArray(acc, o2);
        a21.intoArray(acc, o2 + 8);
        a30.intoArray(acc, o3);
        a31.intoArray(acc, o3 + 8);
        a40.intoArray(acc, o4);
        a41.intoArray(acc, o4 + 8);
        a50.intoArray(acc, o5);
        a51.intoArray(acc, o5 + 8);
    }
}
