package aether.device.cuda;

import static aether.device.cuda.GpuTests.*;
import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cuda.CudaKernels.AttentionShape;
import aether.device.cuda.CudaKernels.FusionCounters;
import aether.runtime.tensor.GgmlType;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The fused decode GEMVs ({@code fused_decode.cuh}) against the launches they replace, on fresh random inputs (the
 * seed is printed): GEMV + RMSNorm, GEMV + SwiGLU (through counters, and by rows without them), GEMV + RoPE and KV
 * store. The fused kernels run the same device
 * functions on the same values, so every output must be the same bits: y, the floats and q8_1 blocks of the epilogue,
 * the KV cache. Each case runs three rounds on one set of counters with new inputs each time, so a counter that was not
 * reset would make a later round's epilogue run early (or never) and its outputs differ; the counters must read zero
 * after. Outputs are poisoned with NaN before each launch. Shapes cover every warp split of the GEMV (1, 2, 4, 8 warps
 * a row, so 8, 4, 2, 1 rows a block) and each weight type the fused kernels read.
 */
@Tag("gpu")
@Timeout(120)
class FusedDecodeKernelsTest {

    @RegisterExtension
    static final GpuFixture gpu = new GpuFixture();

    private FusionCounters counters(int words) {
        return gpu.freeAfterTest(FusionCounters.allocate(gpu.cuda(), words), c -> c.free(gpu.cuda()));
    }

    private GpuMatrix matrix(GgmlType type, int rows, int cols, SplittableRandom r) {
        return gpu.matrix(type, rows, cols, encode(type, gaussian(r, rows * cols, 0.02)));
    }

    /** The activation the GEMV reads: floats for F16 and BF16, else their q8_1 blocks (quantized on the device). */
    private record Input(CUdeviceptr x, QuantizedVector xq) {}

    private Input input(GpuMatrix m, SplittableRandom r) {
        CUdeviceptr x = gpu.upload(gaussian(r, m.cols(), 1.0));
        QuantizedVector xq = gpu.quantized(m.cols());
        gpu.kernels().quantize(x, xq);
        return new Input(x, xq);
    }

    private void assertSameQuantized(QuantizedVector fused, QuantizedVector plain, String what) {
        int n = plain.length();
        byte[] qf = new byte[n], qp = new byte[n];
        gpu.cuda().download(fused.quants(), qf);
        gpu.cuda().download(plain.quants(), qp);
        assertThat(qf).as("%s: q8_1 quants", what).containsExactly(qp);
        assertThat(gpu.download(fused.scales(), n / 16)).as("%s: q8_1 (d, d * sum q)", what)
                .containsExactly(gpu.download(plain.scales(), n / 16));
    }

    private static boolean finite(float[] v) {
        for (float f : v) {
            if (!Float.isFinite(f)) {
                return false;
            }
        }
        return true;
    }

    private void assertZero(FusionCounters c) {
        int[] words = new int[c.length()];
        gpu.cuda().download(c.words(), words);
        assertThat(words).as("arrival counters after the launch").containsOnly(0);
    }

    @ParameterizedTest(name = "{0} {1}x{2}")
    @CsvSource({"Q4_0, 4096, 4096", "Q4_0, 1024, 4096", "Q4_0, 256, 14336", "Q4_0, 96, 2048", "Q4_0, 8192, 1024",
            "Q8_0, 2048, 4096",
            "F16, 512, 2048", "BF16, 512, 2048", "Q4_K, 1024, 2048", "Q6_K, 2048, 1024"})
    void gemvNormIsGemvThenRmsNorm(GgmlType type, int rows, int cols) {
        SplittableRandom r = random();
        GpuMatrix m = matrix(type, rows, cols, r);
        Input in = input(m, r);
        CUdeviceptr nw = gpu.upload(gaussian(r, rows, 1.0));
        FusionCounters counters = counters(1);
        float eps = 1e-5f;
        for (int round = 0; round < 3; round++) {
            float[] residual = gaussian(r, rows, 2.0);
            CUdeviceptr yPlain = gpu.upload(residual), yFused = gpu.upload(residual);
            CUdeviceptr hPlain = gpu.poisoned(rows), hFused = gpu.poisoned(rows);
            QuantizedVector qPlain = gpu.quantized(rows), qFused = gpu.quantized(rows);
            gpu.poison(qPlain);
            gpu.poison(qFused);
            gpu.kernels().gemv(m, in.x(), in.xq(), yPlain, yPlain);
            gpu.kernels().rmsNorm(yPlain, nw, hPlain, qPlain, rows, eps);
            gpu.kernels().gemvNorm(m, in.x(), in.xq(), yFused, yFused, counters, nw, hFused, qFused, eps);
            gpu.cuda().checkErrors("gemv_" + type + "_norm");
            String what = type + " " + rows + "x" + cols + " round " + round;
            float[] y = gpu.download(yFused, rows);
            assertThat(y).as("%s: y = W.x + residual", what).containsExactly(gpu.download(yPlain, rows));
            assertThat(gpu.download(hFused, rows)).as("%s: normed floats", what)
                    .containsExactly(gpu.download(hPlain, rows));
            assertSameQuantized(qFused, qPlain, what);
            assertThat(finite(y)).as("%s: finite", what).isTrue();
        }
        assertZero(counters);
    }

    /** The outputs of the plain GEMV + SwiGLU and of the fused launch that must reproduce them. */
    private record Swiglu(CUdeviceptr guPlain, CUdeviceptr guFused, CUdeviceptr aPlain, CUdeviceptr aFused,
            QuantizedVector qPlain, QuantizedVector qFused) {}

    /** Poisons both sides' outputs and runs the plain GEMV (gate|up) and SwiGLU launches. */
    private Swiglu plainSwiglu(GpuMatrix m, Input in, int ffn) {
        CUdeviceptr guPlain = gpu.poisoned(2 * ffn), guFused = gpu.poisoned(2 * ffn);
        CUdeviceptr aPlain = gpu.poisoned(ffn), aFused = gpu.poisoned(ffn);
        QuantizedVector qPlain = gpu.quantized(ffn), qFused = gpu.quantized(ffn);
        gpu.poison(qPlain);
        gpu.poison(qFused);
        gpu.kernels().gemv(m, in.x(), in.xq(), null, guPlain);
        gpu.kernels().swiglu(guPlain, aPlain, qPlain, ffn);
        return new Swiglu(guPlain, guFused, aPlain, aFused, qPlain, qFused);
    }

    /** The fused launch's gate|up, activations and their q8_1 blocks are the plain launches' bits. */
    private void assertSameSwiglu(Swiglu sw, int ffn, String what) {
        assertThat(gpu.download(sw.guFused(), 2 * ffn)).as("%s: gate|up", what)
                .containsExactly(gpu.download(sw.guPlain(), 2 * ffn));
        float[] act = gpu.download(sw.aFused(), ffn);
        assertThat(act).as("%s: silu(gate) * up", what).containsExactly(gpu.download(sw.aPlain(), ffn));
        assertThat(finite(act)).as("%s: finite", what).isTrue();
        assertSameQuantized(sw.qFused(), sw.qPlain(), what);
    }

    @ParameterizedTest(name = "{0} ffn {1}, K {2}")
    @CsvSource({"Q4_0, 14336, 4096", "Q4_0, 2048, 2048", "Q4_0, 64, 8192", "Q8_0, 1024, 4096", "F16, 512, 1024",
            "BF16, 512, 1024", "Q4_K, 512, 2048", "Q6_K, 1024, 512"})
    void gemvSwigluIsGemvThenSwiglu(GgmlType type, int ffn, int cols) {
        SplittableRandom r = random();
        GpuMatrix m = matrix(type, 2 * ffn, cols, r);
        FusionCounters counters = counters(ffn / 32);
        for (int round = 0; round < 3; round++) {
            Input in = input(m, r);
            Swiglu sw = plainSwiglu(m, in, ffn);
            gpu.kernels().gemvSwiglu(m, in.x(), in.xq(), sw.guFused(), counters, sw.aFused(), sw.qFused());
            gpu.cuda().checkErrors("gemv_" + type + "_swiglu");
            String what = type + " ffn " + ffn + " round " + round;
            assertSameSwiglu(sw, ffn, what);
        }
        assertZero(counters);
    }

    @ParameterizedTest(name = "Q4_0 ffn {0}, K {1}")
    @CsvSource({"14336, 4096", "4096, 2048", "1024, 256"})
    void gemvSwigluRowsIsGemvThenSwiglu(int ffn, int cols) {
        SplittableRandom r = random();
        GpuMatrix m = matrix(GgmlType.Q4_0, 2 * ffn, cols, r);
        assertThat(gpu.kernels().swigluRowsFusable(m)).as("one warp a row for %d x %d", 2 * ffn, cols).isTrue();
        for (int round = 0; round < 2; round++) {
            Input in = input(m, r);
            Swiglu sw = plainSwiglu(m, in, ffn);
            gpu.kernels().gemvSwigluRows(m, in.xq(), sw.guFused(), sw.aFused(), sw.qFused());
            gpu.cuda().checkErrors("gemv_q4_0_swiglu_rows");
            String what = "Q4_0 ffn " + ffn + " by rows, round " + round;
            assertSameSwiglu(sw, ffn, what);
        }
        // a matrix the plain GEMV splits over several warps a row is not taken (its sums would differ)
        GpuMatrix split = matrix(GgmlType.Q4_0, 128, 8192, r);
        assertThat(gpu.kernels().swigluRowsFusable(split)).isFalse();
        assertThat(gpu.kernels().swigluRowsFusable(matrix(GgmlType.Q8_0, 2 * 4096, 2048, r))).as("Q8_0").isFalse();
    }

    @ParameterizedTest(name = "{0} H={1} Hkv={2} D={3} rot={4} neox={5}")
    @CsvSource({"Q4_0, 32, 8, 128, 128, false", "Q4_0, 8, 2, 64, 64, true", "Q4_0, 4, 2, 128, 64, false",
            "Q8_0, 8, 4, 128, 128, false", "F16, 4, 4, 96, 64, true", "BF16, 4, 4, 96, 64, true",
            "Q4_K, 8, 2, 64, 64, false",
            "Q4_0, 2, 1, 256, 256, false"})
    void gemvRopeIsGemvThenRopeKv(GgmlType type, int heads, int kvHeads, int dim, int rot, boolean neox) {
        SplittableRandom r = random();
        int ctx = 64, slots = 2, cols = type == GgmlType.F16 || type == GgmlType.BF16 ? 1024 : 2048;
        var shape = new AttentionShape(heads, kvHeads, dim, rot, ctx, 500000f, 0.5f, neox);
        int width = (heads + 2 * kvHeads) * dim;
        GpuMatrix m = matrix(type, width, cols, r);
        float[] ff = new float[rot / 2];
        for (int i = 0; i < ff.length; i++) {
            ff[i] = 1 + (float) r.nextDouble() * 7;
        }
        CUdeviceptr dff = gpu.upload(ff);
        long cacheBytes = (long) slots * kvHeads * ctx * dim * 2;
        CUdeviceptr[] caches = new CUdeviceptr[4];   // k, v of the plain launches; k, v of the fused one
        for (int i = 0; i < caches.length; i++) {
            caches[i] = gpu.poisonedHalves(cacheBytes / 2);  // f16 NaN everywhere
        }
        CUdeviceptr params = gpu.alloc(4 * 4);
        FusionCounters counters = counters(heads + 2 * kvHeads);
        for (int round = 0; round < 3; round++) {
            int pos = 5 + 17 * round, slot = round % slots;
            gpu.cuda().upload(new int[] {0, pos, slot, 0}, params);
            Input in = input(m, r);
            CUdeviceptr qkvPlain = gpu.poisoned(width), qkvFused = gpu.poisoned(width);
            gpu.kernels().gemv(m, in.x(), in.xq(), null, qkvPlain);
            gpu.kernels().ropeKv(shape, qkvPlain, caches[0], caches[1], params, dff);
            gpu.kernels().gemvRope(m, in.x(), in.xq(), qkvFused, counters, shape, caches[2], caches[3], params, dff);
            gpu.cuda().checkErrors("gemv_" + type + "_rope");
            String what = type + " round " + round;
            float[] q = gpu.download(qkvFused, heads * dim);
            assertThat(q).as("%s: q rotated in place", what).containsExactly(gpu.download(qkvPlain, heads * dim));
            assertThat(finite(q)).as("%s: finite", what).isTrue();
            byte[] plain = new byte[(int) cacheBytes], fused = new byte[(int) cacheBytes];
            for (int kv = 0; kv < 2; kv++) {
                gpu.cuda().download(caches[kv], plain);
                gpu.cuda().download(caches[2 + kv], fused);
                assertThat(fused).as("%s: %s cache", what, kv == 0 ? "k" : "v").containsExactly(plain);
                long at = (((long) slot * kvHeads) * ctx + pos) * dim;
                assertThat(Float.isFinite(GpuTests.half(fused, at))).as("%s: stored at the position", what)
                        .isTrue();
            }
        }
        assertZero(counters);
    }
}
