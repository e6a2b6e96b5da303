package aether.device.cpu.kernel;

import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Whether any integer route JDK 25 offers multiplies faster than the prefill GEMM's f32 tile ({@link
 * GemmTile#tile6x16}), on one core, everything in L1, round-robin in one JVM (best and median of each variant, in
 * GMAC/s: multiply-adds per nanosecond). The candidates, each doing the same count of multiply-adds per call:
 *
 * <ul>
 *   <li>{@code superword-lanes}: C2's SuperWord turns {@code out[i] += a[2i]*b[2i] + a[2i+1]*b[2i+1]} over
 *       {@code short[]} into MulAddVS2VI (vpmaddwd; vpdpwssd with AVX512_VNNI), 2 products per 32-bit lane. It is the
 *       only form it vectorizes: the same pattern as a reduction ({@code sum += ...}) stays scalar (measured: the
 *       same speed with and without {@code -XX:-UseSuperWord}), and with one operand loop-invariant (a broadcast
 *       weight pair) it is not recognized. So the accumulators live in memory: a load and a store per vector of
 *       products.</li>
 *   <li>{@code int16-tile}: the f32 tile's outer product on 16-bit lanes with the Vector API (Q8 activations of 16
 *       tokens in one 256-bit vector, 6 rows of 4-bit weights broadcast, vpmullw + vpaddw; a block of 32 sums exactly
 *       in int16 since |q4·q8| ≤ 1016), then per block widened, converted and scaled into f32.</li>
 * </ul>
 *
 * <p>Usage: {@code scripts/jmh device-workers --main aether.device.cpu.kernel.Int16TileRace SECONDS}.
 */
public final class Int16TileRace {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final int K = 512;   // one K_BLOCK of the GEMM

    private Int16TileRace() {}

    /** The SuperWord MulAddS2I lane form: {@code out[i] += a[2i]·b[2i] + a[2i+1]·b[2i+1]}. */
    static void superwordLanes(int[] out, short[] a, short[] b, int n) {
        for (int i = 0; i < n; i++) {
            out[i] += a[2 * i] * b[2 * i] + a[2 * i + 1] * b[2 * i + 1];
        }
    }

    /** 6 rows × 16 tokens over {@code k} (a multiple of 32): int16 products summed per block, then scaled into f32. */
    static void int16Tile(short[] w, int wStride, short[] xq, float[] dx, float[] dw, int k, float[] acc) {
        for (int b0 = 0; b0 < k; b0 += 32) {
            var s0 = ShortVector.zero(S);
            var s1 = ShortVector.zero(S);
            var s2 = ShortVector.zero(S);
            var s3 = ShortVector.zero(S);
            var s4 = ShortVector.zero(S);
            var s5 = ShortVector.zero(S);
            for (int i = b0; i < b0 + 32; i++) {
                var x = ShortVector.fromArray(S, xq, 16 * i);
                s0 = s0.add(x.mul(w[i]));
                s1 = s1.add(x.mul(w[wStride + i]));
                s2 = s2.add(x.mul(w[2 * wStride + i]));
                s3 = s3.add(x.mul(w[3 * wStride + i]));
                s4 = s4.add(x.mul(w[4 * wStride + i]));
                s5 = s5.add(x.mul(w[5 * wStride + i]));
            }
            int blk = b0 / 32;
            var d0 = FloatVector.fromArray(F, dx, 16 * blk);
            var d1 = FloatVector.fromArray(F, dx, 16 * blk + 8);
            int nb = k / 32;
            flush(s0, d0, d1, dw[blk], acc, 0);
            flush(s1, d0, d1, dw[nb + blk], acc, 16);
            flush(s2, d0, d1, dw[2 * nb + blk], acc, 32);
            flush(s3, d0, d1, dw[3 * nb + blk], acc, 48);
            flush(s4, d0, d1, dw[4 * nb + blk], acc, 64);
            flush(s5, d0, d1, dw[5 * nb + blk], acc, 80);
        }
    }

    /** A row's 16 int16 block sums, widened to f32, times d_x per token and d_w, into {@code acc[o ..)}. */
    private static void flush(ShortVector sums, FloatVector d0, FloatVector d1, float dw, float[] acc, int o) {
        var scale = FloatVector.broadcast(F, dw);
        var lo = (FloatVector) sums.convertShape(VectorOperators.S2F, F, 0);
        var hi = (FloatVector) sums.convertShape(VectorOperators.S2F, F, 1);
        lo.mul(d0).fma(scale, FloatVector.fromArray(F, acc, o)).intoArray(acc, o);
        hi.mul(d1).fma(scale, FloatVector.fromArray(F, acc, o + 8)).intoArray(acc, o + 8);
    }

    public static void main(String[] args) {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 20;
        Random rnd = new Random(1);
        float[] w = new float[6 * K];
        float[] xt = new float[16 * K];
        float[] acc = new float[96];
        short[] wq = new short[6 * K];
        short[] xq = new short[16 * K];
        float[] dx = new float[K / 2];
        float[] dw = new float[6 * K / 32];
        for (int i = 0; i < w.length; i++) {
            w[i] = rnd.nextFloat();
            wq[i] = (short) (rnd.nextInt(16) - 8);
        }
        for (int i = 0; i < xt.length; i++) {
            xt[i] = rnd.nextFloat();
            xq[i] = (short) (rnd.nextInt(255) - 127);
        }
        Arrays.fill(dx, 0.01f);
        Arrays.fill(dw, 0.02f);
        int lanes = 16 * 6 * K / 2 / 16;   // superword: the same multiply-adds as one tile call, in 16 calls of this length
        int[] out = new int[lanes];
        short[] a = Arrays.copyOf(xq, 2 * lanes);
        short[] b = new short[2 * lanes];
        for (int i = 0; i < b.length; i++) {
            b[i] = (short) (rnd.nextInt(16) - 8);
        }
        String[] names = {"f32 tile6x16 (GemmTile)", "superword-lanes (MulAddVS2VI)", "int16-tile (Vector API)"};
        long[][] nanos = new long[3][];
        java.util.List<java.util.List<Long>> samples = java.util.List.of(new java.util.ArrayList<>(),
                new java.util.ArrayList<>(), new java.util.ArrayList<>());
        int reps = 200;
        double macs = 96.0 * K * reps;
        float sink = 0;
        long end = System.nanoTime() + (long) (seconds * 1e9);
        long warmEnd = System.nanoTime() + (long) (seconds / 4 * 1e9);
        while (System.nanoTime() < end) {
            boolean warm = System.nanoTime() > warmEnd;
            for (int v = 0; v < 3; v++) {
                long t0 = System.nanoTime();
                for (int r = 0; r < reps; r++) {
                    switch (v) {
                        case 0 -> GemmTile.tile6x16(w, 0, K, xt, 0, K, acc, 0, 16, r == 0);
                        case 1 -> {
                            for (int c = 0; c < 16; c++) {
                                superwordLanes(out, a, b, lanes);
                            }
                        }
                        default -> int16Tile(wq, K, xq, dx, dw, K, acc);
                    }
                }
                long dt = System.nanoTime() - t0;
                sink += acc[5] + out[3];
                if (warm) {
                    samples.get(v).add(dt);
                }
            }
        }
        System.out.printf(Locale.ROOT, "one core, [16 tokens x %d] x [%d x 6] per call, %.0f s%n", K, K, seconds);
        for (int v = 0; v < 3; v++) {
            nanos[v] = samples.get(v).stream().mapToLong(Long::longValue).sorted().toArray();
            System.out.printf(Locale.ROOT, "  %-32s best %6.1f GMAC/s  median %6.1f GMAC/s%n", names[v],
                    macs / nanos[v][0], macs / nanos[v][nanos[v].length / 2]);
        }
        System.out.println(sink == 42 ? "" : " ");
    }
}
