package aether.device.cuda;

import aether.device.cuda.CudaKernels.AttentionShape;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;

/**
 * GPU micro-benchmark of the prompt-prefill attention: {@code attn_prefill} (one warp per token and query head, CUDA
 * cores) against the tensor-core flash kernel ({@code flash_attn.cuh}) at Llama 8B (32 query / 8 KV heads of 128) and
 * the 1B preset's (of 64) shapes, for a 512-token chunk at positions 0..511 and one at 3584..4095 (the last chunk of a
 * 4k prompt), plus a 32-token chunk at 3584 (the smallest chunk the GEMM prefill takes). Random queries and cache,
 * CUDA events around single launches, warmed up, median of {@code --reps}. One table row per case: µs of attn_prefill
 * and of the flash kernel with 4 and with 8 warps a block ({@code -Daether.cuda.flashWarps}), the speedup and causal
 * TFLOP/s (4 D H times the sum over tokens of the positions each sees) of the faster flash, and the relative
 * difference of attn_prefill's and flash's outputs (a sanity check; CudaFlashPrefillTest checks the numbers).
 *
 * <p>{@code java -cp ... aether.device.cuda.CudaAttentionBench [--reps 10]}
 */
public final class CudaAttentionBench {

    /**
     * heads, KV heads, head size, chunk tokens, first position: the cases timed. The 32-token chunk deep in the cache
     * is the flash kernel's weak spot (8 KV heads x 2 row tiles = 16 blocks, against attn_prefill's 256), kept to see
     * where a token-count threshold should go.
     */
    static final int[][] CASES = {
        {32, 8, 128, 512, 0}, {32, 8, 128, 512, 3584}, {32, 8, 128, 32, 3584},
        {32, 8, 64, 512, 0}, {32, 8, 64, 512, 3584},
    };

    /** Cache positions of the benchmark's slot (the chunk at 3584 ends at its last). */
    static final int CTX = 4096;

    private CudaAttentionBench() {}

    public static void main(String[] args) {
        int reps = 10;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i] + " (expected --reps N)");
            }
        }
        CudaDriver.Availability a = CudaDriver.availability();
        if (!a.available()) {
            System.out.println("CUDA " + a.describe());
            System.exit(2);
        }
        try (CudaContext cuda = CudaContext.open(0)) {
            CudaPrefill prefill = new CudaPrefill(new CudaKernels(cuda));
            System.out.printf("prefill attention on %s: attn_prefill (warp per query) vs flash (tensor cores), median "
                    + "of %d%n", cuda.name(), reps);
            System.out.printf("| %-22s | %-18s | %12s | %11s | %11s | %7s | %13s | %9s |%n", "prefill attention",
                    "chunk", "attn_prefill", "flash 4 wp", "flash 8 wp", "speedup", "flash TFLOP/s", "rel. diff");
            System.out.printf("|------------------------|--------------------|--------------|-------------|-------------|"
                    + "---------|---------------|-----------|%n");
            for (int[] c : CASES) {
                run(cuda, prefill, c[0], c[1], c[2], c[3], c[4], reps);
            }
        }
    }

    static void run(CudaContext cuda, CudaPrefill prefill, int heads, int kvHeads, int dim, int n, int pos, int reps) {
        var shape = new AttentionShape(heads, kvHeads, dim, dim, CTX, 500000f, 1f, false);
        SplittableRandom r = new SplittableRandom(heads * 131L + dim * 7L + pos);
        int qStride = (heads + 2 * kvHeads) * dim;
        long cacheHalves = (long) kvHeads * CTX * dim;
        MemorySegment kh = Arena.ofAuto().allocate(cacheHalves * 2), vh = Arena.ofAuto().allocate(cacheHalves * 2);
        for (long i = 0; i < cacheHalves; i++) {
            kh.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16((float) (r.nextDouble() * 4 - 2)));
            vh.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16((float) (r.nextDouble() * 2 - 1)));
        }
        float[] q = new float[n * qStride];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) (r.nextDouble() * 2 - 1);
        }
        long outBytes = (long) n * heads * dim * 2;
        CUdeviceptr kc = cuda.alloc(cacheHalves * 2), vc = cuda.alloc(cacheHalves * 2), dq = cuda.alloc(q.length * 4L);
        CUdeviceptr params = cuda.alloc(16), outWarp = cuda.alloc(outBytes), outFlash = cuda.alloc(outBytes);
        // kernels timed: attn_prefill (0), flash with 4 and with 8 warps a block
        int[] variants = {0, 4, 8};
        float scale = 1f / (float) Math.sqrt(dim);
        try (CudaContext.Timer timer = cuda.timer()) {
            cuda.upload(kh, kc);
            cuda.upload(vh, vc);
            cuda.upload(q, dq);
            cuda.upload(new int[] {0, pos, 0, 0}, params);
            prefill.attention(shape, dq, qStride, kc, vc, params, scale, outWarp, n, 0);
            prefill.attention(shape, dq, qStride, kc, vc, params, scale, outFlash, n, 4);
            cuda.checkErrors("prefill attention H=" + heads + " D=" + dim + " pos=" + pos);
            double diff = relativeDifference(cuda, outWarp, outFlash, n * heads * dim);
            double[] us = new double[variants.length];
            for (int k = 0; k < variants.length; k++) {
                CUdeviceptr out = variants[k] == 0 ? outWarp : outFlash;
                prefill.attention(shape, dq, qStride, kc, vc, params, scale, out, n, variants[k]);  // warm-up
                double[] t = new double[Math.max(3, reps)];
                for (int i = 0; i < t.length; i++) {
                    timer.start();
                    prefill.attention(shape, dq, qStride, kc, vc, params, scale, out, n, variants[k]);
                    timer.stop();
                    t[i] = timer.elapsedMillis() * 1e3;
                }
                us[k] = CudaBench.median(t);
            }
            cuda.checkErrors("prefill attention timing");
            double flash = Math.min(us[1], us[2]);
            double visible = (double) n * pos + (double) n * (n + 1) / 2;  // sum over tokens of positions seen
            double flops = 4.0 * dim * heads * visible;
            System.out.printf(Locale.ROOT, "| %-22s | %-18s | %9.1f us | %8.1f us | %8.1f us | %6.2fx | %13.1f | "
                    + "%9.2e |%n", (dim == 128 ? "8B" : "1B") + " H=" + heads + "/" + kvHeads + " D=" + dim,
                    "N=" + n + " pos " + pos + ".." + (pos + n - 1), us[0], us[1], us[2], us[0] / flash,
                    flops / (flash * 1e-6) / 1e12, diff);
        } finally {
            cuda.free(kc, cacheHalves * 2);
            cuda.free(vc, cacheHalves * 2);
            cuda.free(dq, q.length * 4L);
            cuda.free(params, 16);
            cuda.free(outWarp, outBytes);
            cuda.free(outFlash, outBytes);
        }
    }

    /** ||a - b|| / ||a|| of two f16 arrays on the device; infinite when either has a NaN or an infinity. */
    static double relativeDifference(CudaContext cuda, CUdeviceptr a, CUdeviceptr b, int halves) {
        byte[] x = new byte[halves * 2], y = new byte[halves * 2];
        cuda.download(a, x);
        cuda.download(b, y);
        double num = 0, den = 0;
        for (int i = 0; i < halves; i++) {
            float u = Float.float16ToFloat((short) ((x[2 * i] & 0xFF) | (x[2 * i + 1] & 0xFF) << 8));
            float v = Float.float16ToFloat((short) ((y[2 * i] & 0xFF) | (y[2 * i + 1] & 0xFF) << 8));
            if (!Float.isFinite(u) || !Float.isFinite(v)) {
                return Double.POSITIVE_INFINITY;
            }
            num += (double) (u - v) * (u - v);
            den += (double) u * u;
        }
        return Math.sqrt(num / Math.max(den, 1e-300));
    }
}
