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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
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

    private static CudaContext cuda;
    private static CudaKernels kernels;
    private static CudaPrefill prefill;
    private final List<Runnable> frees = new ArrayList<>();

    @BeforeAll
    static void open() {
        if (!CudaDriver.availability().available()) {
            return;  // each test is then skipped by assumeGpu(), with the reason
        }
        cuda = CudaContext.open(0);
        kernels = new CudaKernels(cuda);
        prefill = new CudaPrefill(kernels);
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    @BeforeEach
    void requireGpu() {
        assumeGpu();
    }

    @AfterEach
    void freeBuffers() {
        if (cuda != null) {
            frees.forEach(Runnable::run);
            frees.clear();
        }
    }

    private CUdeviceptr up(float[] v) {
        CUdeviceptr p = upload(cuda, v);
        frees.add(() -> cuda.free(p, (long) v.length * 4));
        return p;
    }

    private CUdeviceptr poison(int n) {
        CUdeviceptr p = poisoned(cuda, n);
        frees.add(() -> cuda.free(p, (long) n * 4));
        return p;
    }

    /** A device f16 array of n elements, filled with f16 NaN. */
    private CUdeviceptr halves(int n) {
        CUdeviceptr p = cuda.alloc((long) n * 2);
        cuda.fill8(p, (byte) 0xFF, (long) n * 2);
        frees.add(() -> cuda.free(p, (long) n * 2));
        return p;
    }

    private CUdeviceptr ints(int[] v) {
        CUdeviceptr p = cuda.alloc((long) v.length * 4);
        cuda.upload(v, p);
        frees.add(() -> cuda.free(p, (long) v.length * 4));
        return p;
    }

    private float[] downloadHalves(CUdeviceptr p, int n) {
        byte[] b = new byte[n * 2];
        cuda.download(p, b);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = CudaKernelsTest.half(b, i);
        }
        return out;
    }

    private GpuMatrix matrix(GgmlType type, int rows, int cols, MemorySegment raw) {
        GpuMatrix m = GpuMatrix.upload(cuda, type, rows, cols, raw, null);
        frees.add(() -> m.free(cuda));
        return m;
    }

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
        GpuMatrix m = matrix(type, rows, cols, raw);
        CUdeviceptr dx = up(x), x16 = halves(tokens * cols);
        prefill.toHalf(dx, x16, cols, tokens);
        CUdeviceptr y = poison(tokens * rows), yAdd = up(add);
        double[] exactRef = gemmReference(w, rows, cols, x, tokens, null);
        double[] roundedRef = gemmReference(f16(w), rows, cols, f16(x), tokens, null);
        double[] addRef = gemmReference(f16(w), rows, cols, f16(x), tokens, add);
        // the tile the launcher picks, then each of the three tiles forced (each has its own warp layout)
        prefill.gemm(m, x16, null, y, tokens);
        check(download(cuda, y, tokens * rows), exactRef, roundedRef, cols,
                type + " " + rows + "x" + cols + ", " + tokens + " tokens, tile "
                        + CudaPrefill.tileTokens(tokens, rows, cuda.multiprocessors()) + " (chosen)");
        for (int bn : new int[] {32, 64, 128}) {
            cuda.fill32(y, NAN_BITS, (long) tokens * rows);
            prefill.gemm(m, x16, null, y, tokens, rows, bn);
            check(download(cuda, y, tokens * rows), exactRef, roundedRef, cols,
                    type + " " + rows + "x" + cols + ", " + tokens + " tokens, tile " + bn);
        }
        prefill.gemm(m, x16, yAdd, yAdd, tokens);
        float[] outAdd = download(cuda, yAdd, tokens * rows);
        cuda.checkErrors("gemm");
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
        assertThat(prefill.fitsHalfTiles(matrix(GgmlType.BF16, rows, cols, encode(GgmlType.BF16, w)))).isTrue();
        int at = r.nextInt(n);
        record Case(int index, float value, boolean fits) {}
        for (Case c : List.of(new Case(at, -65280f, true), new Case(n - 1, 65280f, true), new Case(at, 65536f, false),
                new Case(n - 1, -65536f, false), new Case(0, 3e38f, false), new Case(at, Float.NEGATIVE_INFINITY, false),
                new Case(n - 1, Float.NaN, false))) {
            float[] v = w.clone();
            v[c.index()] = c.value();
            GpuMatrix m = matrix(GgmlType.BF16, rows, cols, encode(GgmlType.BF16, v));
            assertThat(prefill.fitsHalfTiles(m)).as("%s at %d", c.value(), c.index()).isEqualTo(c.fits());
        }
        float[] big = w.clone();
        big[at] = 1e6f;
        assertThat(prefill.fitsHalfTiles(matrix(GgmlType.F32, rows, cols, encode(GgmlType.F32, big))))
                .as("F32: not checked").isTrue();
        GpuMatrix ok = GpuMatrix.upload(cuda, GgmlType.F16, 64, cols, encode(GgmlType.F16, Arrays.copyOf(w, 64 * cols)),
                null);
        GpuMatrix beyond = GpuMatrix.upload(cuda, GgmlType.BF16, rows, cols, encode(GgmlType.BF16, big), null);
        GpuMatrix stacked = GpuMatrix.stacked(List.of(ok, beyond));
        frees.add(() -> stacked.free(cuda));
        assertThat(prefill.fitsHalfTiles(stacked)).as("a stack with a BF16 part beyond f16").isFalse();
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
            parts.add(GpuMatrix.upload(cuda, types[i], partRows[i], cols, raw, null));
            at += partRows[i];
        }
        GpuMatrix m = GpuMatrix.stacked(parts);
        frees.add(() -> m.free(cuda));
        assertThat(m.rows()).isEqualTo(rows);
        float[] x = gaussian(r, tokens * cols, 1.0);
        CUdeviceptr dx = up(x), x16 = halves(tokens * cols), y = poison(tokens * rows);
        prefill.toHalf(dx, x16, cols, tokens);
        prefill.gemm(m, x16, null, y, tokens);
        check(download(cuda, y, tokens * rows), gemmReference(w, rows, cols, x, tokens, null),
                gemmReference(f16(w), rows, cols, f16(x), tokens, null), cols, "stacked Q4_K|Q4_K|Q6_K");
        QuantizedVector xq = QuantizedVector.allocate(cuda, cols);
        frees.add(() -> xq.free(cuda));
        kernels.quantize(dx, xq);
        CUdeviceptr y1 = poison(rows);
        kernels.gemv(m, dx, xq, null, y1);
        float[] x0 = Arrays.copyOf(x, cols);
        assertThat(relativeError(download(cuda, y1, rows),
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
        GpuMatrix m = matrix(type, rows, cols, raw);
        assertThat(m.bytes()).as("repacked size").isEqualTo(type == GgmlType.Q4_K
                ? (long) rows * cols / 32 * 18 + (long) rows * cols / 256 * 4 : type.bytesFor((long) rows * cols));
        CUdeviceptr dx = up(x);
        QuantizedVector xq = QuantizedVector.allocate(cuda, cols);
        frees.add(() -> xq.free(cuda));
        kernels.quantize(dx, xq);
        CUdeviceptr y = poison(rows);
        kernels.gemv(m, dx, xq, null, y);
        float[] out = download(cuda, y, rows);
        cuda.checkErrors("gemv " + type);
        double emulated = relativeError(out, gemvReference(w, rows, cols, CudaKernelsTest.q8Emulated(x), null));
        double exact = relativeError(out, gemvReference(w, rows, cols, x, null));
        System.out.printf("GEMV %s %dx%d: vs q8_1-emulating reference %.2e, vs float64 %.2e%n", type, rows, cols,
                emulated, exact);
        assertThat(emulated).as("vs q8_1-emulating reference").isLessThan(1e-5);
        assertThat(exact).as("vs unquantized reference").isLessThan(1e-2);
        CUdeviceptr yAdd = up(add);
        kernels.gemv(m, dx, xq, yAdd, yAdd);
        float[] outAdd = download(cuda, yAdd, rows);
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
        GpuMatrix m = matrix(type, rows, cols, raw);
        int[] tokens = {r.nextInt(rows), r.nextInt(rows), rows - 1, 0, r.nextInt(rows)};
        CUdeviceptr ids = ints(tokens), out = poison(tokens.length * cols);
        prefill.getRows(m, ids, out, tokens.length);
        float[] o = download(cuda, out, tokens.length * cols);
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
        CUdeviceptr dx = up(x), dw = up(w), h = halves(rows * n);
        prefill.rmsNormHalf(dx, dw, h, n, eps, rows);
        float[] got = downloadHalves(h, rows * n);
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
        CUdeviceptr dgu = up(gu), act = halves(rows * ffn);
        prefill.swigluHalf(dgu, act, ffn, rows);
        float[] a = downloadHalves(act, rows * ffn);
        double[] sref = new double[rows * ffn];
        for (int t = 0; t < rows; t++) {
            for (int i = 0; i < ffn; i++) {
                double g = gu[t * 2 * ffn + i];
                sref[t * ffn + i] = g / (1 + Math.exp(-g)) * gu[t * 2 * ffn + ffn + i];
            }
        }
        assertThat(relativeError(a, sref)).as("swiglu as f16").isLessThan(5e-4);

        CUdeviceptr c = halves(rows * n);
        prefill.toHalf(dx, c, n, rows);
        float[] conv = downloadHalves(c, rows * n);
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
        CUdeviceptr kc = cuda.alloc(halves * 2), vc = cuda.alloc(halves * 2);
        frees.add(() -> cuda.free(kc, halves * 2));
        frees.add(() -> cuda.free(vc, halves * 2));
        cuda.upload(kh, kc);
        cuda.upload(vh, vc);
        CUdeviceptr dq = up(q), out = halves(tokens * heads * dim);
        CUdeviceptr params = ints(new int[] {0, pos, slot, 0});
        float scale = 1f / (float) Math.sqrt(dim);
        // attn_prefill itself (the flash kernel, the default for head sizes 64 and 128: CudaFlashPrefillTest)
        prefill.attention(shape, dq, qStride, kc, vc, params, scale, out, tokens, false);
        float[] o = downloadHalves(out, tokens * heads * dim);
        cuda.checkErrors("attn_prefill");
        for (int t = 0; t < tokens; t++) {
            double[] ref = attentionReference(q, t * qStride, k, v, heads, kvHeads, dim, pos + t + 1, scale);
            float[] ot = Arrays.copyOfRange(o, t * heads * dim, (t + 1) * heads * dim);
            assertThat(relativeError(ot, ref)).as("token %d (position %d)", t, pos + t).isLessThan(1e-3);
        }
    }

    /** Float64 softmax(q.K^T * scale).V over the first {@code len} positions, query heads at q[qOffset..]. */
    private static double[] attentionReference(float[] q, int qOffset, float[][] k, float[][] v, int heads,
            int kvHeads, int dim, int len, float scale) {
        double[] ref = new double[heads * dim];
        for (int h = 0; h < heads; h++) {
            int g = h / (heads / kvHeads);
            double[] s = new double[len];
            double m = Double.NEGATIVE_INFINITY;
            for (int p = 0; p < len; p++) {
                double acc = 0;
                for (int i = 0; i < dim; i++) {
                    acc += (double) q[qOffset + h * dim + i] * scale * k[g][p * dim + i];
                }
                s[p] = acc;
                m = Math.max(m, acc);
            }
            double l = 0;
            for (int p = 0; p < len; p++) {
                s[p] = Math.exp(s[p] - m);
                l += s[p];
            }
            for (int i = 0; i < dim; i++) {
                double acc = 0;
                for (int p = 0; p < len; p++) {
                    acc += s[p] * v[g][p * dim + i];
                }
                ref[h * dim + i] = acc / l;
            }
        }
        return ref;
    }
}
