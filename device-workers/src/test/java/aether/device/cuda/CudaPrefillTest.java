package aether.device.cuda;

import static aether.device.cuda.GpuTests.*;
import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The prefill kernels ({@code prefill.cuh}) and the Q4_K/Q6_K kernels ({@code kquants.cuh}) against float64
 * references on fresh random inputs (the seed is printed), outputs poisoned with NaN first. The GEMM is checked twice:
 * against the exact product of the stored weights and the float activations (||out - ref|| / ||ref|| below 2e-3: the
 * f16 rounding of weights and activations) and against a reference that rounds both to f16 as the kernel does (1e-5:
 * only the f32 sum order differs). Skipped, with the reason, where no CUDA device is present.
 */
@Tag("gpu")
@Timeout(180)
class CudaPrefillTest {

    @RegisterExtension
    static final GpuFixture gpu = new GpuFixture();

    private static float f16(float v) {
        return Float.float16ToFloat(Float.floatToFloat16(v));
    }

    private static float[] f16(float[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = f16(v[i]);
        }
        return out;
    }

    /** Float64 Y[t][r] = add[t][r] + sum_c W[r][c] X[t][c]. */
    private static double[] gemmReference(float[] w, int rows, int cols, float[] x, int tokens, float[] add) {
        double[] y = new double[tokens * rows];
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                double s = 0;
                for (int c = 0; c < cols; c++) {
                    s += (double) w[r * cols + c] * x[t * cols + c];
                }
                y[t * rows + r] = s + (add == null ? 0 : add[t * rows + r]);
            }
        }
        return y;
    }

    @ParameterizedTest(name = "{0} {1}x{2}, {3} tokens")
    @CsvSource({"Q4_0, 300, 2048, 200", "Q4_0, 128, 512, 1", "Q4_0, 8448, 256, 300", "Q8_0, 300, 2048, 37",
            "Q8_0, 77, 1024, 128", "F16, 300, 2048, 65", "F16, 256, 768, 31", "Q4_K, 300, 2048, 200",
            "Q4_K, 129, 512, 64", "Q6_K, 300, 2048, 129", "Q6_K, 77, 1024, 3", "BF16, 300, 2048, 65",
            "BF16, 256, 768, 31", "BF16, 2048, 2048, 200", "BF16, 77, 8192, 1"})
    void gemmMatchesTheFloat64Reference(GgmlType type, int rows, int cols, int tokens) {
        SplittableRandom r = random();
        float[] wf = gaussian(r, rows * cols, 0.02);
        MemorySegment raw = encode(type, wf);
        float[] w = decode(type, raw, rows * cols);
        float[] x = gaussian(r, tokens * cols, 1.0);
        float[] add = gaussian(r, tokens * rows, 0.5);
        GpuMatrix m = gpu.matrix(type, rows, cols, raw);
        CUdeviceptr dx = gpu.upload(x), x16 = gpu.poisonedHalves(tokens * cols);
        gpu.prefill().toHalf(dx, x16, cols, tokens);
        CUdeviceptr y = gpu.poisoned(tokens * rows), yAdd = gpu.upload(add);
        double[] exactRef = gemmReference(w, rows, cols, x, tokens, null);
        double[] roundedRef = gemmReference(f16(w), rows, cols, f16(x), tokens, null);
        double[] addRef = gemmReference(f16(w), rows, cols, f16(x), tokens, add);
        // the tile the launcher picks, then each of the three tiles forced (each has its own warp layout)
        gpu.prefill().gemm(m, x16, null, y, tokens);
        check(gpu.download(y, tokens * rows), exactRef, roundedRef, cols,
                type + " " + rows + "x" + cols + ", " + tokens + " tokens, tile "
                        + CudaPrefill.tileTokens(tokens, rows, gpu.cuda().multiprocessors()) + " (chosen)");
        for (int bn : new int[] {32, 64, 128}) {
            gpu.cuda().fill32(y, NAN_BITS, (long) tokens * rows);
            gpu.prefill().gemm(m, x16, null, y, tokens, rows, bn);
            check(gpu.download(y, tokens * rows), exactRef, roundedRef, cols,
                    type + " " + rows + "x" + cols + ", " + tokens + " tokens, tile " + bn);
        }
        gpu.prefill().gemm(m, x16, yAdd, yAdd, tokens);
        float[] outAdd = gpu.download(yAdd, tokens * rows);
        gpu.cuda().checkErrors("gemm");
        assertThat(relativeError(outAdd, addRef)).as("Y += W.X in place").isLessThan(accumulationBound(cols));
    }

    private static double accumulationBound(int cols) {
        return 1e-5 * Math.max(1, Math.sqrt(cols / 2048.0));
    }

    /**
     * Against the f16-rounded reference only the float32 accumulation differs, and its error grows with the square root
     * of the sum's length: 1e-5 up to K = 2048, scaled by sqrt(K / 2048) beyond (BF16 77x8192 measured 1.06e-5 on an
     * H100, 2026-12-07, where K = 2048 shapes measure ~2.4e-6).
     */
    private static void check(float[] out, double[] exactRef, double[] roundedRef, int cols, String what) {
        double exact = relativeError(out, exactRef), rounded = relativeError(out, roundedRef);
        System.out.printf("GEMM %s: vs float64 %.2e, vs f16-rounded inputs %.2e%n", what, exact, rounded);
        assertThat(rounded).as("%s: vs the f16-rounded reference", what).isLessThan(accumulationBound(cols));
        assertThat(exact).as("%s: vs the float64 reference", what).isLessThan(2e-3);
    }

    /**
     * The loader's check that a BF16 matrix fits the GEMM's f16 tiles: true for ordinary weights and for the largest
     * bf16 below f16's maximum (65280), false for one value of magnitude 65536 or more (the first bf16 beyond 65504),
     * an infinity or a NaN, wherever it sits (the last element, a random one); other types and stacks of them are not
     * checked.
     */
    @Test
    void bf16RangeCheckFindsAValueBeyondHalf() {
        SplittableRandom r = random();
        int rows = 1000, cols = 2048, n = rows * cols;
        float[] w = gaussian(r, n, 0.02);
        assertThat(gpu.prefill().fitsHalfTiles(gpu.matrix(GgmlType.BF16, rows, cols, encode(GgmlType.BF16, w))))
                .isTrue();
        int at = r.nextInt(n);
        record Case(int index, float value, boolean fits) {}
        for (Case c : List.of(new Case(at, -65280f, true), new Case(n - 1, 65280f, true), new Case(at, 65536f, false),
                new Case(n - 1, -65536f, false), new Case(0, 3e38f, false), new Case(at, Float.NEGATIVE_INFINITY, false),
                new Case(n - 1, Float.NaN, false))) {
            float[] v = w.clone();
            v[c.index()] = c.value();
            GpuMatrix m = gpu.matrix(GgmlType.BF16, rows, cols, encode(GgmlType.BF16, v));
            assertThat(gpu.prefill().fitsHalfTiles(m)).as("%s at %d", c.value(), c.index()).isEqualTo(c.fits());
        }
        float[] big = w.clone();
        big[at] = 1e6f;
        assertThat(gpu.prefill().fitsHalfTiles(gpu.matrix(GgmlType.F32, rows, cols, encode(GgmlType.F32, big))))
                .as("F32: not checked").isTrue();
        GpuMatrix ok = GpuMatrix.upload(gpu.cuda(), GgmlType.F16, 64, cols,
                encode(GgmlType.F16, Arrays.copyOf(w, 64 * cols)), null);
        GpuMatrix beyond = GpuMatrix.upload(gpu.cuda(), GgmlType.BF16, rows, cols, encode(GgmlType.BF16, big), null);
        GpuMatrix stacked = GpuMatrix.stacked(List.of(ok, beyond));
        gpu.freeAfterTest(() -> stacked.free(gpu.cuda()));
        assertThat(gpu.prefill().fitsHalfTiles(stacked)).as("a stack with a BF16 part beyond f16").isFalse();
    }

    /** A matrix stacked from parts of different types writes each part's rows of every token's output row. */
    @Test
    void gemmAndGemvOfAStackedMatrixOfMixedTypes() {
        SplittableRandom r = random();
        int cols = 1024, tokens = 70;
        int[] partRows = {256, 64, 64};
        GgmlType[] types = {GgmlType.Q4_K, GgmlType.Q4_K, GgmlType.Q6_K};
        int rows = 384;
        float[] w = new float[rows * cols];
        List<GpuMatrix> parts = new ArrayList<>();
        int at = 0;
        for (int i = 0; i < partRows.length; i++) {
            float[] wf = gaussian(r, partRows[i] * cols, 0.02);
            MemorySegment raw = encode(types[i], wf);
            System.arraycopy(decode(types[i], raw, partRows[i] * cols), 0, w, at * cols, partRows[i] * cols);
            parts.add(GpuMatrix.upload(gpu.cuda(), types[i], partRows[i], cols, raw, null));
            at += partRows[i];
        }
        GpuMatrix m = GpuMatrix.stacked(parts);
        gpu.freeAfterTest(() -> m.free(gpu.cuda()));
        assertThat(m.rows()).isEqualTo(rows);
        float[] x = gaussian(r, tokens * cols, 1.0);
        CUdeviceptr dx = gpu.upload(x), x16 = gpu.poisonedHalves(tokens * cols), y = gpu.poisoned(tokens * rows);
        gpu.prefill().toHalf(dx, x16, cols, tokens);
        gpu.prefill().gemm(m, x16, null, y, tokens);
        check(gpu.download(y, tokens * rows), gemmReference(w, rows, cols, x, tokens, null),
                gemmReference(f16(w), rows, cols, f16(x), tokens, null), cols, "stacked Q4_K|Q4_K|Q6_K");
        QuantizedVector xq = gpu.quantized(cols);
        gpu.kernels().quantize(dx, xq);
        CUdeviceptr y1 = gpu.poisoned(rows);
        gpu.kernels().gemv(m, dx, xq, null, y1);
        float[] x0 = Arrays.copyOf(x, cols);
        assertThat(relativeError(gpu.download(y1, rows),
                gemvReference(w, rows, cols, CudaKernelsTest.q8Emulated(x0), null))).as("stacked GEMV").isLessThan(1e-5);
    }

    @ParameterizedTest(name = "{0} {1}x{2}")
    @CsvSource({"Q4_K, 300, 4096", "Q4_K, 8192, 2048", "Q4_K, 77, 14336", "Q6_K, 300, 4096", "Q6_K, 8192, 2048",
            "Q6_K, 77, 14336", "Q6_K, 1024, 256"})
    void kQuantGemvMatchesTheFloat64Reference(GgmlType type, int rows, int cols) {
        SplittableRandom r = random();
        float[] wf = gaussian(r, rows * cols, 0.02);
        MemorySegment raw = encode(type, wf);
        float[] w = decode(type, raw, rows * cols);
        float[] x = gaussian(r, cols, 1.0);
        float[] add = gaussian(r, rows, 0.5);
        GpuMatrix m = gpu.matrix(type, rows, cols, raw);
        assertThat(m.bytes()).as("repacked size").isEqualTo(type == GgmlType.Q4_K
                ? (long) rows * cols / 32 * 18 + (long) rows * cols / 256 * 4 : type.bytesFor((long) rows * cols));
        CUdeviceptr dx = gpu.upload(x);
        QuantizedVector xq = gpu.quantized(cols);
        gpu.kernels().quantize(dx, xq);
        CUdeviceptr y = gpu.poisoned(rows);
        gpu.kernels().gemv(m, dx, xq, null, y);
        float[] out = gpu.download(y, rows);
        gpu.cuda().checkErrors("gemv " + type);
        double emulated = relativeError(out, gemvReference(w, rows, cols, CudaKernelsTest.q8Emulated(x), null));
        double exact = relativeError(out, gemvReference(w, rows, cols, x, null));
        System.out.printf("GEMV %s %dx%d: vs q8_1-emulating reference %.2e, vs float64 %.2e%n", type, rows, cols,
                emulated, exact);
        assertThat(emulated).as("vs q8_1-emulating reference").isLessThan(1e-5);
        assertThat(exact).as("vs unquantized reference").isLessThan(1e-2);
        CUdeviceptr yAdd = gpu.upload(add);
        gpu.kernels().gemv(m, dx, xq, yAdd, yAdd);
        float[] outAdd = gpu.download(yAdd, rows);
        assertThat(relativeError(outAdd, gemvReference(w, rows, cols, CudaKernelsTest.q8Emulated(x), add)))
                .as("y += W.x").isLessThan(1e-5);
    }

    @ParameterizedTest
    @CsvSource({"Q4_K", "Q6_K"})
    void kQuantRowsDequantizeExactlyAsTheCpu(GgmlType type) {
        SplittableRandom r = random();
        int rows = 40, cols = 2048 + 256;
        float[] table = gaussian(r, rows * cols, 0.5);
        MemorySegment raw = encode(type, table);
        float[] decoded = decode(type, raw, rows * cols);
        GpuMatrix m = gpu.matrix(type, rows, cols, raw);
        int[] tokens = {r.nextInt(rows), r.nextInt(rows), rows - 1, 0, r.nextInt(rows)};
        CUdeviceptr ids = gpu.upload(tokens), out = gpu.poisoned(tokens.length * cols);
        gpu.prefill().getRows(m, ids, out, tokens.length);
        float[] o = gpu.download(out, tokens.length * cols);
        for (int t = 0; t < tokens.length; t++) {
            assertThat(Arrays.copyOfRange(o, t * cols, (t + 1) * cols)).as("row %d", tokens[t])
                    .containsExactly(Arrays.copyOfRange(decoded, tokens[t] * cols, (tokens[t] + 1) * cols));
        }
    }

    @Test
    void halfRowsOfRmsNormSwigluAndConversion() {
        SplittableRandom r = random();
        int n = 2048, rows = 5;
        float[] x = gaussian(r, rows * n, 2.0), w = gaussian(r, n, 1.0);
        float eps = 1e-5f;
        CUdeviceptr dx = gpu.upload(x), dw = gpu.upload(w), h = gpu.poisonedHalves(rows * n);
        gpu.prefill().rmsNormHalf(dx, dw, h, n, eps, rows);
        float[] got = gpu.downloadHalves(h, rows * n);
        double[] ref = new double[rows * n];
        for (int t = 0; t < rows; t++) {
            double ss = 0;
            for (int i = 0; i < n; i++) {
                ss += (double) x[t * n + i] * x[t * n + i];
            }
            double scale = 1 / Math.sqrt(ss / n + eps);
            for (int i = 0; i < n; i++) {
                ref[t * n + i] = x[t * n + i] * scale * w[i];
            }
        }
        assertThat(relativeError(got, ref)).as("rmsnorm as f16").isLessThan(5e-4);

        int ffn = 1536;
        float[] gu = gaussian(r, rows * 2 * ffn, 3.0);
        CUdeviceptr dgu = gpu.upload(gu), act = gpu.poisonedHalves(rows * ffn);
        gpu.prefill().swigluHalf(dgu, act, ffn, rows);
        float[] a = gpu.downloadHalves(act, rows * ffn);
        double[] sref = new double[rows * ffn];
        for (int t = 0; t < rows; t++) {
            for (int i = 0; i < ffn; i++) {
                double g = gu[t * 2 * ffn + i];
                sref[t * ffn + i] = g / (1 + Math.exp(-g)) * gu[t * 2 * ffn + ffn + i];
            }
        }
        assertThat(relativeError(a, sref)).as("swiglu as f16").isLessThan(5e-4);

        CUdeviceptr c = gpu.poisonedHalves(rows * n);
        gpu.prefill().toHalf(dx, c, n, rows);
        float[] conv = gpu.downloadHalves(c, rows * n);
        for (int i = 0; i < rows * n; i++) {
            assertThat(conv[i]).as("element %d", i).isEqualTo(f16(x[i]));
        }
    }

    @ParameterizedTest(name = "H={0} Hkv={1} D={2} pos={3} tokens={4}")
    @CsvSource({"8, 2, 64, 0, 37", "32, 8, 128, 100, 130", "4, 4, 96, 5, 9", "6, 2, 256, 0, 4", "4, 1, 32, 1000, 1"})
    void prefillAttentionIsCausalOverTheCache(int heads, int kvHeads, int dim, int pos, int tokens) {
        SplittableRandom r = random();
        int ctx = pos + tokens + 16, slots = 2, slot = 1, len = pos + tokens;
        var shape = new CudaKernels.AttentionShape(heads, kvHeads, dim, dim, ctx, 10000f, 1f, false);
        int qStride = (heads + 2 * kvHeads) * dim;  // rows of qkv, as the engine passes them
        float[] q = gaussian(r, tokens * qStride, 1.0);
        long halves = (long) slots * kvHeads * ctx * dim;
        MemorySegment kh = Arena.ofAuto().allocate(halves * 2), vh = Arena.ofAuto().allocate(halves * 2);
        kh.fill((byte) 0xFF);  // f16 NaN past the sequence: a read beyond position pos + t poisons the output
        vh.fill((byte) 0xFF);
        float[][] k = new float[kvHeads][len * dim], v = new float[kvHeads][len * dim];
        for (int g = 0; g < kvHeads; g++) {
            for (int p = 0; p < len; p++) {
                for (int i = 0; i < dim; i++) {
                    long at = (((long) slot * kvHeads + g) * ctx + p) * dim + i;
                    short ks = Float.floatToFloat16((float) (gaussian(r, 1, 2.0)[0]));
                    short vs = Float.floatToFloat16((float) (gaussian(r, 1, 1.0)[0]));
                    kh.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, at, ks);
                    vh.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, at, vs);
                    k[g][p * dim + i] = Float.float16ToFloat(ks);
                    v[g][p * dim + i] = Float.float16ToFloat(vs);
                }
            }
        }
        CUdeviceptr kc = gpu.upload(kh), vc = gpu.upload(vh);
        CUdeviceptr dq = gpu.upload(q), out = gpu.poisonedHalves(tokens * heads * dim);
        CUdeviceptr params = gpu.upload(new int[] {0, pos, slot, 0});
        float scale = 1f / (float) Math.sqrt(dim);
        // attn_prefill itself (the flash kernel, the default for head sizes 64 and 128: CudaFlashPrefillTest)
        gpu.prefill().attention(shape, dq, qStride, kc, vc, params, scale, out, tokens, false);
        float[] o = gpu.downloadHalves(out, tokens * heads * dim);
        gpu.cuda().checkErrors("attn_prefill");
        for (int t = 0; t < tokens; t++) {
            double[] ref = attentionReference(q, t * qStride, k, v, heads, kvHeads, dim, pos + t + 1, scale);
            float[] ot = Arrays.copyOfRange(o, t * heads * dim, (t + 1) * heads * dim);
            assertThat(relativeError(ot, ref)).as("token %d (position %d)", t, pos + t).isLessThan(1e-3);
        }
    }

}
