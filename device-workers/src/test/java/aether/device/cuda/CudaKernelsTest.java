package aether.device.cuda;

import static aether.device.cuda.GpuTests.*;
import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every kernel of {@code aether_kernels.cu} against a float64 reference on fresh random inputs (the seed is printed),
 * outputs poisoned with NaN before each launch. Tolerances are ||out - ref|| / ||ref|| unless said otherwise: float32
 * arithmetic 1e-5..1e-4 depending on the length of the sums; q8_1 activations (the int8 dot products) 1e-2 against the
 * unquantized reference and 1e-5 against a reference that quantizes the activations exactly as the kernel does.
 * Skipped, with the reason, where no CUDA device is present.
 */
@Tag("gpu")
@Timeout(120)
class CudaKernelsTest {

    @RegisterExtension
    static final GpuFixture gpu = new GpuFixture();

    @BeforeAll
    static void describeDevice() {
        if (gpu.available()) {
            CudaContext cuda = gpu.cuda();
            System.out.println("GPU tests on " + cuda.name() + ", compute capability " + cuda.computeCapability()
                    + ", " + cuda.multiprocessors() + " SMs, " + (cuda.totalMemory() >> 20) + " MiB");
        }
    }

    /** A q8_1 vector poisoned (quants 0x55, NaN scales): a block the kernel does not write fails checkQuantized. */
    private static QuantizedVector quantized(int n) {
        return gpu.poison(gpu.quantized(n));
    }

    /** llama.cpp's q8_1 as the kernel computes it (float math, roundf = half away from zero). */
    static float[] q8Emulated(float[] x) {
        float[] out = new float[x.length];
        for (int b = 0; b < x.length; b += 32) {
            float amax = 0;
            for (int i = 0; i < 32; i++) {
                amax = Math.max(amax, Math.abs(x[b + i]));
            }
            float d = amax / 127f;
            for (int i = 0; i < 32; i++) {
                float v = amax == 0 ? 0 : x[b + i] / d;
                float q = (float) (Math.signum(v) * Math.floor(Math.abs(v) + 0.5));
                out[b + i] = q * d;
            }
        }
        return out;
    }

    /**
     * Q4_0 GEMV the way llama.cpp's vec_dot_q4_0_q8_1 computes it, in float64: per block d4 * (d8 * sum(nibble * q8)
     * - 8 * sum(x)) with the float sum of x.
     */
    static float[] q4_0WithFloatSum(MemorySegment raw, int rows, int cols, float[] x) {
        float[] xq = q8Emulated(x);
        int nb = cols / 32;
        float[] out = new float[rows];
        for (int r = 0; r < rows; r++) {
            double acc = 0;
            for (int b = 0; b < nb; b++) {
                long at = ((long) r * nb + b) * 18;
                double d4 = Float.float16ToFloat(raw.get(ValueLayout.JAVA_SHORT_UNALIGNED, at));
                double dot = 0, sum = 0;
                for (int i = 0; i < 32; i++) {
                    int q = Byte.toUnsignedInt(raw.get(ValueLayout.JAVA_BYTE, at + 2 + (i & 15)));
                    int nibble = i < 16 ? q & 15 : q >>> 4;
                    dot += nibble * (double) xq[b * 32 + i];
                    sum += x[b * 32 + i];
                }
                acc += d4 * (dot - 8 * sum);
            }
            out[r] = (float) acc;
        }
        return out;
    }

    /** Reads back a quantized vector and checks it against the floats it should hold. */
    private void checkQuantized(QuantizedVector q, float[] values) {
        int n = values.length;
        byte[] qs = new byte[n];
        gpu.cuda().download(q.quants(), qs);
        float[] ds = gpu.download(q.scales(), n / 16);
        for (int b = 0; b < n / 32; b++) {
            float d = ds[2 * b];
            double amax = 0;
            long qsum = 0;
            for (int i = 0; i < 32; i++) {
                amax = Math.max(amax, Math.abs(values[b * 32 + i]));
                qsum += qs[b * 32 + i];
            }
            assertThat((double) d).as("scale of block %d", b).isCloseTo(amax / 127, org.assertj.core.data.Offset.offset(amax * 1e-6 + 1e-30));
            // the offset term's sum is that of the dequantized values the int8 product sees: d * sum(q)
            assertThat(ds[2 * b + 1]).as("sum of block %d", b).isEqualTo((float) (d * (double) qsum),
                    org.assertj.core.data.Offset.offset(Math.abs(d) * 1e-6f * Math.abs(qsum) + 1e-30f));
            for (int i = 0; i < 32; i++) {
                double err = Math.abs(qs[b * 32 + i] * (double) d - values[b * 32 + i]);
                assertThat(err).as("element %d", b * 32 + i).isLessThanOrEqualTo(0.5 * d * (1 + 1e-5) + 1e-30);
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}x{2}")
    @CsvSource({"Q4_0, 300, 4096", "Q4_0, 8192, 2048", "Q4_0, 77, 14336", "Q8_0, 300, 4096", "Q8_0, 8192, 2048",
            "Q8_0, 77, 14336", "F16, 300, 4096", "F16, 8192, 2048", "F16, 77, 14336", "BF16, 300, 4096",
            "BF16, 8192, 2048", "BF16, 77, 14336"})
    void gemvMatchesTheFloat64Reference(GgmlType type, int rows, int cols) {
        SplittableRandom r = random();
        float[] wf = gaussian(r, rows * cols, 0.02);
        MemorySegment raw = encode(type, wf);
        float[] w = decode(type, raw, rows * cols);
        float[] x = gaussian(r, cols, 1.0);
        float[] add = gaussian(r, rows, 0.5);
        GpuMatrix m = gpu.matrix(type, rows, cols, raw);
        CUdeviceptr dx = gpu.upload(x);
        QuantizedVector xq = quantized(cols);
        gpu.kernels().quantize(dx, xq);
        CUdeviceptr y = gpu.poisoned(rows);
        gpu.kernels().gemv(m, dx, xq, null, y);
        float[] out = gpu.download(y, rows);
        gpu.cuda().checkErrors("gemv");
        double exact = relativeError(out, gemvReference(w, rows, cols, x, null));
        if (m.readsQuantizedActivations()) {
            checkQuantized(xq, x);
            double emulated = relativeError(out, gemvReference(w, rows, cols, q8Emulated(x), null));
            assertThat(emulated).as("vs q8_1-emulating reference").isLessThan(1e-5);
            assertThat(exact).as("vs unquantized reference").isLessThan(1e-2);
            if (type == GgmlType.Q4_0) {
                // llama.cpp's variant keeps the float sum of x for the -8 offset: exact offset, but the activations'
                // rounding errors weighted by the raw nibbles (0..15) instead of the weights (q - 8). Ours must be
                // the more accurate of the two against float64 (by about 2x on gaussian data).
                double floatSum = relativeError(q4_0WithFloatSum(raw, rows, cols, x), gemvReference(w, rows, cols, x, null));
                System.out.printf("Q4_0 %dx%d vs float64: kernel (d8*sum q8) %.3e, llama.cpp's float-sum variant %.3e%n",
                        rows, cols, exact, floatSum);
                assertThat(exact).as("kernel vs float64, against the float-sum variant's %.3e", floatSum)
                        .isLessThan(floatSum);
            }
        } else {
            assertThat(exact).as("vs float64 reference").isLessThan(1e-5);
        }
        // residual form, in place: y = add + W.x with y aliasing add
        CUdeviceptr yAdd = gpu.upload(add);
        gpu.kernels().gemv(m, dx, xq, yAdd, yAdd);
        float[] outAdd = gpu.download(yAdd, rows);
        double[] refAdd = gemvReference(w, rows, cols, m.readsQuantizedActivations() ? q8Emulated(x) : x, add);
        assertThat(relativeError(outAdd, refAdd)).as("y += W.x").isLessThan(1e-5);
    }

    @ParameterizedTest(name = "{0} {1}x{2}, {3} tokens")
    @CsvSource({"Q4_0, 301, 4096, 8", "Q4_0, 1024, 2048, 5", "Q8_0, 301, 4096, 3", "Q8_0, 64, 14336, 8",
            "F16, 301, 4096, 8", "F16, 77, 2048, 1", "BF16, 301, 4096, 8", "BF16, 77, 2048, 1",
            "BF16, 1000, 8192, 5"})
    void chunkGemvMatchesThePerTokenReference(GgmlType type, int rows, int cols, int tokens) {
        SplittableRandom r = random();
        float[] wf = gaussian(r, rows * cols, 0.02);
        MemorySegment raw = encode(type, wf);
        float[] w = decode(type, raw, rows * cols);
        float[] x = gaussian(r, tokens * cols, 1.0);
        float[] add = gaussian(r, tokens * rows, 0.5);
        GpuMatrix m = gpu.matrix(type, rows, cols, raw);
        CUdeviceptr dx = gpu.upload(x);
        QuantizedVector xq = quantized(tokens * cols);
        gpu.kernels().quantize(dx, xq);
        CUdeviceptr y = gpu.poisoned(tokens * rows), yAdd = gpu.upload(add);
        gpu.kernels().gemvBatch(m, dx, xq, null, y, tokens);
        gpu.kernels().gemvBatch(m, dx, xq, yAdd, yAdd, tokens);
        float[] out = gpu.download(y, tokens * rows), outAdd = gpu.download(yAdd, tokens * rows);
        gpu.cuda().checkErrors("gemv_batch");
        for (int t = 0; t < tokens; t++) {
            float[] xt = java.util.Arrays.copyOfRange(x, t * cols, (t + 1) * cols);
            float[] at = java.util.Arrays.copyOfRange(add, t * rows, (t + 1) * rows);
            float[] seen = m.readsQuantizedActivations() ? q8Emulated(xt) : xt;
            assertThat(relativeError(java.util.Arrays.copyOfRange(out, t * rows, (t + 1) * rows),
                    gemvReference(w, rows, cols, seen, null))).as("token %d", t).isLessThan(1e-5);
            assertThat(relativeError(java.util.Arrays.copyOfRange(outAdd, t * rows, (t + 1) * rows),
                    gemvReference(w, rows, cols, seen, at))).as("token %d, y += W.x", t).isLessThan(1e-5);
        }
    }

    /**
     * The BF16 GEMVs against the CPU engine's own BF16 matmul ({@link aether.device.cpu.kernel.Matmul}, the kernels the
     * CPU engine runs: weights widened by the shift, f32 activations): the decode GEMV against the CPU's one-token
     * path, the chunk GEMV against its multi-token path for 1..8 tokens, with and without the added input. Both sum
     * exact f32 products in their own order: 1e-5 relative per token (float32 sums over 2048-8192 products differ by
     * ~1e-7..1e-6 relative).
     */
    @ParameterizedTest(name = "BF16 {0}x{1}")
    @CsvSource({"2048, 2048", "512, 8192", "8192, 2048", "77, 4096"})
    void bf16GemvsMatchTheCpuMatmul(int rows, int cols) {
        SplittableRandom r = random();
        MemorySegment raw = encode(GgmlType.BF16, gaussian(r, rows * cols, 0.02));
        int tokens = 1 + r.nextInt(CudaKernels.BATCH);
        float[] x = gaussian(r, tokens * cols, 1.0);
        float[] add = gaussian(r, tokens * rows, 0.5);
        float[] cpuOne = cpuMatmul(raw, rows, cols, java.util.Arrays.copyOf(x, cols), 1);
        float[] cpuChunk = cpuMatmul(raw, rows, cols, x, tokens);
        GpuMatrix m = gpu.matrix(GgmlType.BF16, rows, cols, raw);
        assertThat(m.readsQuantizedActivations()).as("BF16 reads the float activations").isFalse();
        CUdeviceptr dx = gpu.upload(x), y = gpu.poisoned(rows), yChunk = gpu.poisoned(tokens * rows);
        CUdeviceptr yAdd = gpu.upload(add);
        gpu.kernels().gemv(m, dx, null, null, y);
        gpu.kernels().gemvBatch(m, dx, null, null, yChunk, tokens);
        gpu.kernels().gemvBatch(m, dx, null, yAdd, yAdd, tokens);
        float[] one = gpu.download(y, rows), chunk = gpu.download(yChunk, tokens * rows),
                chunkAdd = gpu.download(yAdd, tokens * rows);
        gpu.cuda().checkErrors("BF16 gemv");
        assertThat(relativeError(one, toDouble(cpuOne, null, 0))).as("decode GEMV vs the CPU's").isLessThan(1e-5);
        for (int t = 0; t < tokens; t++) {
            float[] got = java.util.Arrays.copyOfRange(chunk, t * rows, (t + 1) * rows);
            float[] gotAdd = java.util.Arrays.copyOfRange(chunkAdd, t * rows, (t + 1) * rows);
            float[] cpu = java.util.Arrays.copyOfRange(cpuChunk, t * rows, (t + 1) * rows);
            assertThat(relativeError(got, toDouble(cpu, null, 0))).as("token %d of %d vs the CPU's", t, tokens)
                    .isLessThan(1e-5);
            assertThat(relativeError(gotAdd, toDouble(cpu, add, t * rows))).as("token %d, y += W.x", t)
                    .isLessThan(1e-5);
        }
    }

    /** y[t][r] = W[r] . x[t] by the CPU engine's matmul (one thread). */
    private static float[] cpuMatmul(MemorySegment raw, int rows, int cols, float[] x, int tokens) {
        try (aether.device.cpu.KernelPool pool = new aether.device.cpu.KernelPool(1,
                aether.device.cpu.KernelPool.DEFAULT_SPIN_NS); Arena arena = Arena.ofConfined()) {
            MemorySegment xs = arena.allocate((long) x.length * 4, 64);
            MemorySegment.copy(x, 0, xs, ValueLayout.JAVA_FLOAT, 0, x.length);
            MemorySegment ys = arena.allocate((long) tokens * rows * 4, 64);
            new aether.device.cpu.kernel.Matmul(pool).multiply(GgmlType.BF16, raw, rows, cols, xs, tokens, ys);
            return ys.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    /** v (+ add[from..]) widened, as a reference for {@link GpuTests#relativeError}. */
    private static double[] toDouble(float[] v, float[] add, int from) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i] + (add == null ? 0.0 : add[from + i]);
        }
        return d;
    }

    @Test
    void quantizeAndRmsNormAndSwiglu() {
        SplittableRandom r = random();
        int n = 4096;
        float[] x = gaussian(r, n, 2.0);
        float[] w = gaussian(r, n, 1.0);
        float eps = 1e-5f;
        CUdeviceptr dx = gpu.upload(x), dw = gpu.upload(w), h = gpu.poisoned(n);
        QuantizedVector q = quantized(n);
        gpu.kernels().rmsNorm(dx, dw, h, q, n, eps);
        float[] hOut = gpu.download(h, n);
        double ss = 0;
        for (float v : x) {
            ss += (double) v * v;
        }
        double scale = 1 / Math.sqrt(ss / n + eps);
        double[] ref = new double[n];
        for (int i = 0; i < n; i++) {
            ref[i] = x[i] * scale * w[i];
        }
        assertThat(relativeError(hOut, ref)).as("rmsnorm").isLessThan(1e-5);
        checkQuantized(q, hOut);

        QuantizedVector q2 = quantized(n);
        gpu.kernels().quantize(dx, q2);
        gpu.cuda().synchronize();
        checkQuantized(q2, x);

        int ffn = 8192;
        float[] gu = gaussian(r, 2 * ffn, 3.0);
        CUdeviceptr dgu = gpu.upload(gu), out = gpu.poisoned(ffn);
        QuantizedVector q3 = quantized(ffn);
        gpu.kernels().swiglu(dgu, out, q3, ffn);
        float[] o = gpu.download(out, ffn);
        double[] sref = new double[ffn];
        for (int i = 0; i < ffn; i++) {
            double g = gu[i];
            sref[i] = g / (1 + Math.exp(-g)) * gu[ffn + i];
        }
        assertThat(relativeError(o, sref)).as("swiglu").isLessThan(1e-5);
        checkQuantized(q3, o);

        CUdeviceptr sum = gpu.poisoned(n);
        gpu.kernels().add(dx, dw, sum, n);
        float[] s = gpu.download(sum, n);
        for (int i = 0; i < n; i++) {
            assertThat(s[i]).isEqualTo(x[i] + w[i]);
        }
    }

    @ParameterizedTest(name = "neox={0} H={1} Hkv={2} D={3} rot={4} pos={5}")
    @CsvSource({"false, 8, 2, 64, 64, 0", "false, 32, 8, 128, 128, 1234", "true, 8, 4, 128, 128, 77",
            "true, 4, 2, 64, 32, 500", "false, 4, 4, 96, 64, 9"})
    void ropeRotatesQAndStoresKvAtThePositionAndSlot(boolean neox, int heads, int kvHeads, int dim, int rot, int pos) {
        SplittableRandom r = random();
        int ctx = 2048, slots = 2, slot = 1;
        float base = 500000f, freqScale = 0.5f;
        var shape = new CudaKernels.AttentionShape(heads, kvHeads, dim, rot, ctx, base, freqScale, neox);
        int width = (heads + 2 * kvHeads) * dim;
        float[] qkv = gaussian(r, width, 1.0);
        float[] ff = new float[rot / 2];
        for (int i = 0; i < ff.length; i++) {
            ff[i] = 1 + (float) r.nextDouble() * 7;
        }
        CUdeviceptr dqkv = gpu.upload(qkv), dff = gpu.upload(ff);
        long cacheHalves = (long) slots * kvHeads * ctx * dim;
        CUdeviceptr kc = gpu.poisonedHalves(cacheHalves), vc = gpu.poisonedHalves(cacheHalves);  // f16 NaN everywhere
        CUdeviceptr params = gpu.upload(new int[] {0, pos, slot, 0});
        gpu.kernels().ropeKv(shape, dqkv, kc, vc, params, dff);
        float[] out = gpu.download(dqkv, heads * dim);
        double[] ref = new double[(heads + kvHeads) * dim];
        for (int h = 0; h < heads + kvHeads; h++) {
            for (int j = 0; j < dim; j++) {
                double xj = qkv[h * dim + j];
                if (j >= rot) {
                    ref[h * dim + j] = xj;
                    continue;
                }
                int pair, partner;
                boolean first;
                if (neox) {
                    first = j < rot / 2;
                    pair = first ? j : j - rot / 2;
                    partner = first ? j + rot / 2 : j - rot / 2;
                } else {
                    first = j % 2 == 0;
                    pair = j / 2;
                    partner = first ? j + 1 : j - 1;
                }
                double theta = pos * Math.pow(base, -2.0 * pair / rot) / ff[pair] * freqScale;
                double xp = qkv[h * dim + partner];
                ref[h * dim + j] = first ? xj * Math.cos(theta) - xp * Math.sin(theta)
                        : xp * Math.sin(theta) + xj * Math.cos(theta);
            }
        }
        double[] qRef = java.util.Arrays.copyOf(ref, heads * dim);
        assertThat(relativeError(out, qRef)).as("q rotated in place").isLessThan(1e-4);
        byte[] kBytes = new byte[(int) (cacheHalves * 2)], vBytes = new byte[(int) (cacheHalves * 2)];
        gpu.cuda().download(kc, kBytes);
        gpu.cuda().download(vc, vBytes);
        float[] kOut = new float[kvHeads * dim], vOut = new float[kvHeads * dim];
        double[] kRef = new double[kvHeads * dim], vRef = new double[kvHeads * dim];
        for (int g = 0; g < kvHeads; g++) {
            for (int j = 0; j < dim; j++) {
                long at = (((long) slot * kvHeads + g) * ctx + pos) * dim + j;
                kOut[g * dim + j] = half(kBytes, at);
                vOut[g * dim + j] = half(vBytes, at);
                kRef[g * dim + j] = ref[(heads + g) * dim + j];
                vRef[g * dim + j] = qkv[(heads + kvHeads + g) * dim + j];
            }
        }
        assertThat(relativeError(kOut, kRef)).as("k in the cache (f16)").isLessThan(1e-3);
        assertThat(relativeError(vOut, vRef)).as("v in the cache (f16)").isLessThan(1e-3);
        // nothing else of the cache was written: a position next to it is still NaN
        long other = (((long) slot * kvHeads) * ctx + (pos + 1) % ctx) * dim;
        assertThat(Float.isNaN(half(kBytes, other))).isTrue();
    }

    @ParameterizedTest(name = "H={0} Hkv={1} D={2} len={3} ctx={4}")
    @CsvSource({"8, 2, 64, 1, 512", "8, 2, 64, 37, 512", "32, 8, 128, 300, 4096", "4, 4, 128, 4096, 4096",
            "6, 2, 96, 1000, 70000"})
    void attentionMatchesTheFloat64Reference(int heads, int kvHeads, int dim, int len, int ctx) {
        SplittableRandom r = random();
        int slots = 2, slot = 1;
        var shape = new CudaKernels.AttentionShape(heads, kvHeads, dim, dim, ctx, 10000f, 1f, false);
        float[] q = gaussian(r, heads * dim, 1.0);
        long halves = (long) slots * kvHeads * ctx * dim;
        MemorySegment kh = Arena.ofAuto().allocate(halves * 2), vh = Arena.ofAuto().allocate(halves * 2);
        float[][] k = new float[kvHeads][len * dim], v = new float[kvHeads][len * dim];
        for (int g = 0; g < kvHeads; g++) {
            for (int p = 0; p < len; p++) {
                for (int i = 0; i < dim; i++) {
                    long at = (((long) slot * kvHeads + g) * ctx + p) * dim + i;
                    short ks = Float.floatToFloat16((float) (gaussian1(r) * 2));
                    short vs = Float.floatToFloat16((float) gaussian1(r));
                    kh.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, at, ks);
                    vh.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, at, vs);
                    k[g][p * dim + i] = Float.float16ToFloat(ks);
                    v[g][p * dim + i] = Float.float16ToFloat(vs);
                }
            }
        }
        CUdeviceptr kc = gpu.upload(kh), vc = gpu.upload(vh);
        CUdeviceptr dq = gpu.upload(q), out = gpu.poisoned(heads * dim);
        CUdeviceptr params = gpu.upload(new int[] {0, len - 1, slot, 0});
        var scratch = CudaKernels.AttentionScratch.allocate(gpu.cuda(), shape);
        gpu.freeAfterTest(() -> scratch.free(gpu.cuda(), shape));
        QuantizedVector oq = quantized(heads * dim);
        float scale = 1f / (float) Math.sqrt(dim);
        gpu.kernels().prepareAttention(shape);
        gpu.kernels().attention(shape, dq, kc, vc, params, scratch, scale, out, oq);
        float[] o = gpu.download(out, heads * dim);
        assertThat(relativeError(o, attentionReference(q, 0, k, v, heads, kvHeads, dim, len, scale))).as("attention")
                .isLessThan(1e-4);
        checkQuantized(oq, o);
        // a second launch over the same scratch gives the same bits
        gpu.kernels().attention(shape, dq, kc, vc, params, scratch, scale, out, oq);
        assertThat(gpu.download(out, heads * dim)).as("attention, second launch").containsExactly(o);
        if (len >= 3) {
            // a prompt chunk of 3 queries at positions len-3 .. len-1: token t sees positions 0 .. len-3+t (causal)
            int tokens = 3;
            float[] q3 = gaussian(r, tokens * heads * dim, 1.0);
            CUdeviceptr dq3 = gpu.upload(q3), out3 = gpu.poisoned(tokens * heads * dim);
            CUdeviceptr params3 = gpu.upload(new int[] {0, len - tokens, slot, 0});
            QuantizedVector oq3 = quantized(tokens * heads * dim);
            gpu.kernels().attention(shape, dq3, heads * dim, kc, vc, params3, scratch, scale, out3, oq3, tokens);
            float[] o3 = gpu.download(out3, tokens * heads * dim);
            for (int t = 0; t < tokens; t++) {
                float[] ot = java.util.Arrays.copyOfRange(o3, t * heads * dim, (t + 1) * heads * dim);
                assertThat(relativeError(ot, attentionReference(q3, t * heads * dim, k, v, heads, kvHeads, dim,
                        len - tokens + t + 1, scale))).as("chunk token %d", t).isLessThan(1e-4);
            }
            checkQuantized(oq3, o3);
        }
    }

    private static double gaussian1(SplittableRandom r) {
        return Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
    }

    @ParameterizedTest
    @CsvSource({"Q4_0", "Q8_0", "F16", "BF16", "F32"})
    void getRowDequantizesTheTokensRow(GgmlType type) {
        SplittableRandom r = random();
        int rows = 50, cols = 2048 + 256;
        float[] table = gaussian(r, rows * cols, 0.5);
        MemorySegment raw = encode(type, table);
        float[] decoded = decode(type, raw, rows * cols);
        GpuMatrix m = gpu.matrix(type, rows, cols, raw);
        for (int rep = 0; rep < 3; rep++) {
            int token = r.nextInt(rows);
            CUdeviceptr params = gpu.upload(new int[] {token, 0, 0, 0});
            CUdeviceptr out = gpu.poisoned(cols);
            gpu.kernels().getRow(m, params, out);
            float[] o = gpu.download(out, cols);
            float[] expected = java.util.Arrays.copyOfRange(decoded, token * cols, (token + 1) * cols);
            assertThat(o).as("row %d", token).containsExactly(expected);
        }
    }

    @Test
    void aCapturedGraphReadsPerTokenValuesFromTheParamsBuffer() {
        SplittableRandom r = random();
        int vocab = 64, dim = 1024, rows = 512;
        float[] table = gaussian(r, vocab * dim, 1.0);
        MemorySegment tableRaw = encode(GgmlType.Q8_0, table);
        float[] tableDec = decode(GgmlType.Q8_0, tableRaw, vocab * dim);
        float[] wf = gaussian(r, rows * dim, 0.05);
        MemorySegment wRaw = encode(GgmlType.Q4_0, wf);
        float[] w = decode(GgmlType.Q4_0, wRaw, rows * dim);
        GpuMatrix tab = gpu.matrix(GgmlType.Q8_0, vocab, dim, tableRaw);
        GpuMatrix mat = gpu.matrix(GgmlType.Q4_0, rows, dim, wRaw);
        CUdeviceptr params = gpu.upload(new int[] {0, 0, 0, 0});
        CUdeviceptr x = gpu.poisoned(dim), y = gpu.poisoned(rows), best = gpu.upload(new int[] {-1});
        QuantizedVector xq = quantized(dim);
        try (CudaContext.Graph graph = gpu.cuda().capture(() -> {
            gpu.kernels().getRow(tab, params, x);
            gpu.kernels().quantize(x, xq);
            gpu.kernels().gemv(mat, x, xq, null, y);
            gpu.kernels().argmaxRows(y, 1, rows, best);
        })) {
            for (int rep = 0; rep < 4; rep++) {
                int token = r.nextInt(vocab);
                gpu.cuda().fill32(y, NAN_BITS, rows);
                gpu.cuda().uploadAsync(new int[] {token, rep, 0, 0}, params);
                graph.launch();
                float[] out = gpu.download(y, rows);
                float[] row = java.util.Arrays.copyOfRange(tableDec, token * dim, (token + 1) * dim);
                double[] ref = gemvReference(w, rows, dim, q8Emulated(row), null);
                assertThat(relativeError(out, ref)).as("token %d", token).isLessThan(1e-5);
                int[] idx = new int[1];
                gpu.cuda().download(best, idx);
                int expected = 0;
                for (int i = 1; i < rows; i++) {
                    if (out[i] > out[expected]) {
                        expected = i;
                    }
                }
                assertThat(idx[0]).isEqualTo(expected);
            }
        }
    }
}
