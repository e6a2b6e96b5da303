package aether.device.cuda;

import static aether.device.cuda.GpuTests.*;
import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The tensor-core flash attention of a prompt chunk ({@code flash_attn.cuh}) against a float64 reference and against
 * the one-warp-per-query kernel {@code attn_prefill}, on fresh random queries and caches (the seed is printed): chunks
 * at the cache's start and mid-cache, token counts that are not a multiple of the 64-row tile, one token, GQA groups
 * of 1 to 16 heads (also 3, which does not divide a tile), head sizes 64 and 128. The cache is NaN past the chunk's
 * last position and in the other slot, outputs are NaN before the launch: a read past a row's causal range, or an
 * output left unwritten, fails.
 *
 * <p>Tolerances, from the f16 rounding (unit roundoff u = 2^-11 = 4.9e-4) the kernel adds to attn_prefill's f32
 * arithmetic: it rounds the scaled query to f16 (a relative error up to u per element, so an error in each score of
 * about u times its magnitude: scores here are O(1-3) in log2 units) and the softmax weights P to f16 (up to u each)
 * before the tensor-core products; the output is a weighted mean of f16 value rows, so both show up as a relative error
 * of a few u. Against the exact float64 reference: 3e-3 (about 6u); against the float64 reference that rounds the
 * query as the kernel does, only P's rounding and f32 sums remain: 1.5e-3; against attn_prefill (f32 queries and
 * weights): 3e-3. Head size 96 has no flash kernel: the launcher falls back to attn_prefill (1e-3, as its own test).
 * Blocks of 4 and 8 warps give the same bits (each warp's 16 rows see the same tiles either way).
 */
@Tag("gpu")
@Timeout(180)
class CudaFlashPrefillTest {

    @RegisterExtension
    static final GpuFixture gpu = new GpuFixture();

    /** {@code slack}: cache positions past the chunk (NaN); 0 ends the slot, and the allocation, at its last token. */
    @ParameterizedTest(name = "H={0} Hkv={1} D={2} pos={3} tokens={4} slack={5}")
    @CsvSource({"8, 2, 64, 0, 37, 80", "32, 8, 128, 100, 130, 80", "32, 8, 64, 0, 64, 0", "4, 4, 128, 5, 9, 80",
            "6, 2, 64, 70, 50, 80", "16, 1, 128, 1000, 1, 0", "8, 8, 64, 63, 1, 80", "2, 1, 128, 0, 200, 0",
            "8, 2, 128, 64, 65, 80", "32, 8, 128, 3584, 40, 0", "4, 2, 96, 3, 20, 80"})
    void flashAttentionMatchesFloat64AndTheWarpKernel(int heads, int kvHeads, int dim, int pos, int tokens,
            int slack) {
        SplittableRandom r = random();
        int ctx = pos + tokens + slack, slots = 2, slot = 1, len = pos + tokens;
        var shape = new CudaKernels.AttentionShape(heads, kvHeads, dim, dim, ctx, 10000f, 1f, false);
        boolean flash = CudaPrefill.FlashLaunch.plan(shape, tokens, 4).isPresent();
        assertThat(flash).as("a flash kernel for head size %d", dim).isEqualTo(dim == 64 || dim == 128);
        int qStride = (heads + 2 * kvHeads) * dim;  // rows of qkv, as the engine passes them
        float[] q = gaussian(r, tokens * qStride, 1.0);
        long halves = (long) slots * kvHeads * ctx * dim;
        MemorySegment kh = Arena.ofAuto().allocate(halves * 2), vh = Arena.ofAuto().allocate(halves * 2);
        kh.fill((byte) 0xFF);  // f16 NaN past the sequence and in the other slot
        vh.fill((byte) 0xFF);
        float[][] k = new float[kvHeads][len * dim], v = new float[kvHeads][len * dim];
        for (int g = 0; g < kvHeads; g++) {
            float[] kr = gaussian(r, len * dim, 2.0), vr = gaussian(r, len * dim, 1.0);
            for (int i = 0; i < len * dim; i++) {
                long at = ((long) slot * kvHeads + g) * ctx * dim + i;
                short ks = Float.floatToFloat16(kr[i]), vs = Float.floatToFloat16(vr[i]);
                kh.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, at, ks);
                vh.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, at, vs);
                k[g][i] = Float.float16ToFloat(ks);
                v[g][i] = Float.float16ToFloat(vs);
            }
        }
        CUdeviceptr kc = gpu.upload(kh), vc = gpu.upload(vh), dq = gpu.upload(q);
        CUdeviceptr params = gpu.upload(new int[] {0, pos, slot, 0});
        int outHalves = tokens * heads * dim;
        CUdeviceptr outFlash = gpu.poisonedHalves(outHalves), outFlash8 = gpu.poisonedHalves(outHalves);
        CUdeviceptr outWarp = gpu.poisonedHalves(outHalves);
        float scale = 1f / (float) Math.sqrt(dim);
        gpu.prefill().attention(shape, dq, qStride, kc, vc, params, scale, outFlash, tokens, 4);
        gpu.prefill().attention(shape, dq, qStride, kc, vc, params, scale, outFlash8, tokens, 8);
        gpu.prefill().attention(shape, dq, qStride, kc, vc, params, scale, outWarp, tokens, 0);
        float[] of = gpu.downloadHalves(outFlash, outHalves), ow = gpu.downloadHalves(outWarp, outHalves);
        float[] of8 = gpu.downloadHalves(outFlash8, outHalves);
        gpu.cuda().checkErrors("prefill attention");
        // every warp computes the same 16 rows over the same tiles whatever the block's warp count: the same bits
        assertThat(of8).as("flash with 8 warps a block vs 4").containsExactly(of);

        // the query as the flash kernel rounds it: f16(q * (scale * log2 e)), in float as on the device
        float qscale = scale * 1.4426950408889634f;
        float[] qRounded = new float[q.length];
        for (int i = 0; i < q.length; i++) {
            qRounded[i] = Float.float16ToFloat(Float.floatToFloat16(q[i] * qscale));
        }
        double worstExact = 0, worstRounded = 0, worstWarp = 0;
        for (int t = 0; t < tokens; t++) {
            int n = heads * dim;
            float[] ft = Arrays.copyOfRange(of, t * n, (t + 1) * n), wt = Arrays.copyOfRange(ow, t * n, (t + 1) * n);
            double[] exact = reference(q, t * qStride, scale, k, v, heads, kvHeads, dim, pos + t + 1);
            double exactErr = relativeError(ft, exact);
            double warpErr = relativeError(ft, toDouble(wt));
            assertThat(relativeError(wt, exact)).as("attn_prefill, token %d (position %d)", t, pos + t)
                    .isLessThan(1e-3);
            if (!flash) {  // the fallback is attn_prefill itself
                assertThat(exactErr).as("fallback, token %d (position %d)", t, pos + t).isLessThan(1e-3);
                continue;
            }
            double[] rounded = reference(qRounded, t * qStride, 1 / 1.4426950408889634, k, v, heads, kvHeads, dim,
                    pos + t + 1);
            double roundedErr = relativeError(ft, rounded);
            assertThat(exactErr).as("flash vs float64, token %d (position %d)", t, pos + t).isLessThan(3e-3);
            assertThat(roundedErr).as("flash vs float64 with the f16 query, token %d (position %d)", t, pos + t)
                    .isLessThan(1.5e-3);
            assertThat(warpErr).as("flash vs attn_prefill, token %d (position %d)", t, pos + t).isLessThan(3e-3);
            worstExact = Math.max(worstExact, exactErr);
            worstRounded = Math.max(worstRounded, roundedErr);
            worstWarp = Math.max(worstWarp, warpErr);
        }
        if (flash) {
            System.out.printf("flash prefill attention H=%d Hkv=%d D=%d pos=%d tokens=%d: worst token vs float64 %.2e, "
                    + "vs float64 with the f16 query %.2e, vs attn_prefill %.2e%n", heads, kvHeads, dim, pos, tokens,
                    worstExact, worstRounded, worstWarp);
        }
    }

    private static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    /**
     * Float64 softmax(q.K^T * scale).V of one token's query heads (at q[qOffset..]) over the first {@code len}
     * positions: [heads * dim].
     */
    private static double[] reference(float[] q, int qOffset, double scale, float[][] k, float[][] v, int heads,
            int kvHeads, int dim, int len) {
        double[] out = new double[heads * dim];
        double[] s = new double[len];
        for (int h = 0; h < heads; h++) {
            int g = h / (heads / kvHeads);
            double m = Double.NEGATIVE_INFINITY;
            for (int p = 0; p < len; p++) {
                double acc = 0;
                for (int i = 0; i < dim; i++) {
                    acc += (double) q[qOffset + h * dim + i] * k[g][p * dim + i];
                }
                s[p] = acc * scale;
                m = Math.max(m, s[p]);
            }
            double l = 0;
            for (int p = 0; p < len; p++) {
                s[p] = Math.exp(s[p] - m);
                l += s[p];
            }
            for (int p = 0; p < len; p++) {
                double w = s[p] / l;
                for (int i = 0; i < dim; i++) {
                    out[h * dim + i] += w * v[g][p * dim + i];
                }
            }
        }
        return out;
    }
}
