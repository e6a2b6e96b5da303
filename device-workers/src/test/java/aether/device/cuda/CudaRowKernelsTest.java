package aether.device.cuda;

import static aether.device.cuda.GpuTests.*;
import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The batched-decode kernels ({@link CudaRowKernels}) on fresh random inputs (seed printed), outputs poisoned with
 * NaN: the row GEMVs (the MMQ and MMA int8 tensor-core kernels, the dp4a chunk GEMV) against the float64 per-row
 * reference with the activations quantized as the kernel does, and bitwise unchanged for a row whatever the other rows
 * of the launch and its position among them; RoPE, the
 * KV store and attention per row (own position, own slot) against the single-token kernels run row by row.
 */
@Tag("gpu")
@Timeout(120)
class CudaRowKernelsTest {

    @RegisterExtension
    static final GpuFixture gpu = new GpuFixture();

    @ParameterizedTest(name = "{0} {1}x{2}, {3} rows, {4}")
    @CsvSource({"Q4_0, 301, 4096, 70, MMQ", "Q4_0, 300, 4096, 64, MMQ", "Q4_0, 77, 2080, 9, MMQ",
            "Q4_0, 300, 14336, 1, MMQ", "Q4_0, 77, 4096, 33, MMQ", "Q4_0, 4096, 2080, 7, MMQ",
            "Q4_0, 16900, 2080, 9, MMQ", "Q8_0, 300, 4096, 8, MMQ", "Q8_0, 77, 2080, 64, MMQ",
            "Q8_0, 301, 14336, 33, MMQ", "Q8_0, 77, 4096, 1, MMQ", "Q8_0, 16800, 2080, 65, MMQ",
            "Q4_0, 301, 4096, 70, MMA", "Q4_0, 1000, 2048, 9, MMA", "Q4_0, 64, 14336, 1, MMA",
            "Q8_0, 301, 4096, 64, MMA", "Q8_0, 77, 14336, 3, MMA", "Q4_0, 301, 2048, 13, DP4A",
            "Q8_0, 130, 4096, 8, DP4A", "F16, 301, 4096, 17, DP4A", "BF16, 301, 4096, 17, DP4A",
            "BF16, 2048, 2048, 64, DP4A", "BF16, 77, 8192, 3, DP4A"})
    void rowGemvMatchesThePerRowReference(GgmlType type, int m, int k, int rows, CudaRowKernels.RowKernel kernel) {
        SplittableRandom r = random();
        MemorySegment raw = encode(type, gaussian(r, m * k, 0.02));
        float[] w = decode(type, raw, m * k);
        GpuMatrix mat = gpu.matrix(type, m, k, raw);
        float[] x = gaussian(r, rows * k, 1.0);
        float[] add = gaussian(r, rows * m, 0.5);
        CUdeviceptr dx = gpu.upload(x);
        QuantizedVector xq = gpu.quantized(rows * k);
        gpu.kernels().quantize(dx, xq);
        var rk = rowKernels(rows);
        CUdeviceptr y = gpu.poisoned(rows * m), yAdd = gpu.upload(add);
        rk.gemv(mat, dx, xq, null, y, rows, kernel);
        rk.gemv(mat, dx, xq, yAdd, yAdd, rows, kernel);
        float[] out = gpu.download(y, rows * m), outAdd = gpu.download(yAdd, rows * m);
        gpu.cuda().checkErrors("row gemv");
        for (int t = 0; t < rows; t++) {
            float[] xt = Arrays.copyOfRange(x, t * k, (t + 1) * k);
            float[] seen = mat.readsQuantizedActivations() ? CudaKernelsTest.q8Emulated(xt) : xt;
            float[] at = Arrays.copyOfRange(add, t * m, (t + 1) * m);
            assertThat(relativeError(Arrays.copyOfRange(out, t * m, (t + 1) * m), gemvReference(w, m, k, seen, null)))
                    .as("row %d", t).isLessThan(1e-5);
            assertThat(relativeError(Arrays.copyOfRange(outAdd, t * m, (t + 1) * m), gemvReference(w, m, k, seen, at)))
                    .as("row %d, y += W.x", t).isLessThan(1e-5);
        }
        // the first rows alone (another launch shape): bitwise the same results
        int fewer = Math.max(1, rows / 3);
        CUdeviceptr y2 = gpu.poisoned(fewer * m);
        rk.gemv(mat, dx, xq, null, y2, fewer, kernel);
        assertThat(gpu.download(y2, fewer * m)).containsExactly(Arrays.copyOf(out, fewer * m));
    }

    /**
     * A sequence gets the same logits whatever batch it decodes in: one row's outputs, bitwise, when it runs alone, as
     * row 0 of a 64-row pass and as row 37 of another (the other rows random), for split-K shapes (M &lt; 16896) and
     * unsplit ones, Q4_0 and Q8_0, with and without the added input.
     */
    @ParameterizedTest(name = "{0} {1}x{2}, {3}")
    @CsvSource({"Q4_0, 300, 4096, MMQ", "Q8_0, 77, 2080, MMQ", "Q4_0, 16900, 2080, MMQ", "Q8_0, 4096, 4096, MMQ",
            "Q4_0, 300, 4096, MMA", "Q8_0, 300, 4096, DP4A"})
    void aRowsResultsDoNotDependOnTheOtherRowsOrItsPosition(GgmlType type, int m, int k,
            CudaRowKernels.RowKernel kernel) {
        SplittableRandom r = random();
        MemorySegment raw = encode(type, gaussian(r, m * k, 0.02));
        GpuMatrix mat = gpu.matrix(type, m, k, raw);
        int rows = 64, at = 37;
        float[] mine = gaussian(r, k, 1.0), myAdd = gaussian(r, m, 0.5);
        var rk = rowKernels(rows);
        float[][] outs = new float[3][], sums = new float[3][];
        int[] position = {0, 0, at};
        int[] passRows = {1, rows, rows};
        for (int v = 0; v < 3; v++) {
            float[] x = gaussian(r, passRows[v] * k, 1.0);
            float[] add = gaussian(r, passRows[v] * m, 0.5);
            System.arraycopy(mine, 0, x, position[v] * k, k);
            System.arraycopy(myAdd, 0, add, position[v] * m, m);
            CUdeviceptr dx = gpu.upload(x), y = gpu.poisoned(passRows[v] * m), yAdd = gpu.upload(add);
            QuantizedVector xq = gpu.quantized(passRows[v] * k);
            gpu.kernels().quantize(dx, xq);
            rk.gemv(mat, dx, xq, null, y, passRows[v], kernel);
            rk.gemv(mat, dx, xq, yAdd, yAdd, passRows[v], kernel);
            outs[v] = Arrays.copyOfRange(gpu.download(y, passRows[v] * m), position[v] * m, (position[v] + 1) * m);
            sums[v] = Arrays.copyOfRange(gpu.download(yAdd, passRows[v] * m), position[v] * m,
                    (position[v] + 1) * m);
            gpu.cuda().checkErrors("row gemv, pass " + v);
        }
        float[] alone = outs[0];
        assertThat(IntStream.range(0, m).allMatch(i -> Float.isFinite(alone[i]))).as("alone: finite results").isTrue();
        assertThat(outs[1]).as("row 0 of %d", rows).containsExactly(outs[0]);
        assertThat(outs[2]).as("row %d of %d", at, rows).containsExactly(outs[0]);
        assertThat(sums[1]).as("row 0 of %d, y += W.x", rows).containsExactly(sums[0]);
        assertThat(sums[2]).as("row %d of %d, y += W.x", at, rows).containsExactly(sums[0]);
    }

    /**
     * The split-K sums added by the last block of each output tile (one launch) and by the reduce kernel (a second
     * launch) are bitwise the same, launch after launch (the arrival counters are zero again after each), with y and
     * with y += W.x in place.
     */
    @ParameterizedTest(name = "{0} {1}x{2}, {3} rows")
    @CsvSource({"Q4_0, 4096, 4096, 64", "Q4_0, 301, 2080, 70", "Q8_0, 1030, 14336, 33", "Q8_0, 77, 4096, 5"})
    void fusedSplitKSumEqualsTheReduceKernel(GgmlType type, int m, int k, int rows) {
        assertThat(CudaRowKernels.mmqSplits(type, m, k)).as("a split-K shape").isGreaterThan(1);
        SplittableRandom r = random();
        GpuMatrix mat = gpu.matrix(type, m, k, encode(type, gaussian(r, m * k, 0.02)));
        float[] add = gaussian(r, rows * m, 0.5);
        CUdeviceptr dx = gpu.upload(gaussian(r, rows * k, 1.0));
        QuantizedVector xq = gpu.quantized(rows * k);
        gpu.kernels().quantize(dx, xq);
        var rk = rowKernels(rows);
        CUdeviceptr twoLaunch = gpu.poisoned(rows * m), twoLaunchAdd = gpu.upload(add);
        rk.mmq(mat, xq, null, twoLaunch, rows, false);
        rk.mmq(mat, xq, twoLaunchAdd, twoLaunchAdd, rows, false);
        float[] expected = gpu.download(twoLaunch, rows * m), expectedAdd = gpu.download(twoLaunchAdd, rows * m);
        assertThat(IntStream.range(0, rows * m).allMatch(i -> Float.isFinite(expected[i]))).isTrue();
        for (int launch = 0; launch < 3; launch++) {
            CUdeviceptr y = gpu.poisoned(rows * m), yAdd = gpu.upload(add);
            rk.mmq(mat, xq, null, y, rows, true);
            rk.mmq(mat, xq, yAdd, yAdd, rows, true);
            assertThat(gpu.download(y, rows * m)).as("launch %d", launch).containsExactly(expected);
            assertThat(gpu.download(yAdd, rows * m)).as("launch %d, y += W.x", launch).containsExactly(expectedAdd);
            gpu.cuda().checkErrors("fused split-K, launch " + launch);
        }
    }

    private CudaRowKernels rowKernels(int capacity) {
        var rk = new CudaRowKernels(gpu.cuda(), capacity);
        gpu.freeAfterTest(rk::free);
        return rk;
    }

    /** Each row's embedding is its id's table row, decoded exactly as the CPU decodes it (repeated ids too). */
    @ParameterizedTest
    @CsvSource({"BF16", "F16", "Q8_0"})
    void embedDecodesEachRowsTableRow(GgmlType type) {
        SplittableRandom r = random();
        int vocab = 300, cols = 2048 + 96, rows = 37;
        MemorySegment raw = encode(type, gaussian(r, vocab * cols, 0.5));
        float[] table = decode(type, raw, vocab * cols);
        GpuMatrix m = gpu.matrix(type, vocab, cols, raw);
        int[] ids = r.ints(rows, 0, vocab).toArray();
        ids[5] = ids[4];
        ids[rows - 1] = vocab - 1;
        CUdeviceptr out = gpu.poisoned(rows * cols);
        rowKernels(rows).embed(m, gpu.upload(ids), out, rows);
        float[] got = gpu.download(out, rows * cols);
        gpu.cuda().checkErrors("embed");
        for (int i = 0; i < rows; i++) {
            assertThat(Arrays.copyOfRange(got, i * cols, (i + 1) * cols)).as("row %d (id %d)", i, ids[i])
                    .containsExactly(Arrays.copyOfRange(table, ids[i] * cols, (ids[i] + 1) * cols));
        }
    }

    @Test
    void ropeKvAndAttentionPerRowEqualTheSingleTokenKernelsRowByRow() {
        SplittableRandom r = random();
        int heads = 8, kvHeads = 2, dim = 64, ctx = 300, slots = 6, rows = 5;
        var shape = new CudaKernels.AttentionShape(heads, kvHeads, dim, dim, ctx, 10000f, 1f, false);
        int width = (heads + 2 * kvHeads) * dim;
        int[] slot = {4, 0, 2, 5, 1};
        int[] pos = {0, 299, 17, 150, 1};
        float[] qkv = gaussian(r, rows * width, 1.0);
        long cache = (long) slots * kvHeads * ctx * dim;
        // the same random cache twice: one for the row kernels, one for the single-token kernels
        short[] init = new short[(int) cache];
        for (int i = 0; i < init.length; i++) {
            init[i] = Float.floatToFloat16((float) (r.nextDouble() * 2 - 1));
        }
        byte[] initBytes = new byte[init.length * 2];
        for (int i = 0; i < init.length; i++) {
            initBytes[2 * i] = (byte) init[i];
            initBytes[2 * i + 1] = (byte) (init[i] >> 8);
        }
        CUdeviceptr k1 = gpu.halves(cache), v1 = gpu.halves(cache), k2 = gpu.halves(cache), v2 = gpu.halves(cache);
        for (CUdeviceptr c : new CUdeviceptr[] {k1, v1, k2, v2}) {
            gpu.cuda().upload(initBytes, c);
        }
        float scale = 1f / (float) Math.sqrt(dim);
        gpu.kernels().prepareAttention(shape);

        // row by row with the single-token kernels
        float[] expectedAttn = new float[rows * heads * dim];
        float[] expectedQ = new float[rows * heads * dim];
        var scratch1 = CudaKernels.AttentionScratch.allocate(gpu.cuda(), shape);
        gpu.freeAfterTest(() -> scratch1.free(gpu.cuda(), shape));
        for (int t = 0; t < rows; t++) {
            CUdeviceptr q1 = gpu.upload(Arrays.copyOfRange(qkv, t * width, (t + 1) * width));
            CUdeviceptr params = gpu.upload(new int[] {0, pos[t], slot[t], 0});
            CUdeviceptr o1 = gpu.poisoned(heads * dim);
            gpu.kernels().ropeKv(shape, q1, k1, v1, params, null);
            gpu.kernels().attention(shape, q1, k1, v1, params, scratch1, scale, o1, null);
            System.arraycopy(gpu.download(o1, heads * dim), 0, expectedAttn, t * heads * dim, heads * dim);
            System.arraycopy(gpu.download(q1, heads * dim), 0, expectedQ, t * heads * dim, heads * dim);
        }

        // all rows in one launch each
        var rk = rowKernels(8);
        rk.prepareAttention(shape);
        int[] ids = new int[rk.idsWords()];
        for (int t = 0; t < rows; t++) {
            ids[rk.positionIndex(t)] = pos[t];
            ids[rk.slotIndex(t)] = slot[t];
        }
        CUdeviceptr dids = gpu.upload(ids), q2 = gpu.upload(qkv), o2 = gpu.poisoned(rows * heads * dim);
        var scratch2 = CudaRowKernels.scratch(gpu.cuda(), shape, rows);
        gpu.freeAfterTest(() -> scratch2.free(gpu.cuda(), shape));
        QuantizedVector oq = gpu.quantized(rows * heads * dim);
        rk.ropeKv(shape, q2, k2, v2, dids, null, rows);
        rk.attention(shape, q2, width, k2, v2, dids, scratch2, scale, o2, oq, rows, false);
        float[] attn = gpu.download(o2, rows * heads * dim);
        float[] rotated = gpu.download(q2, rows * width);
        // the grouped kernel (one block per KV head for its 4 query heads, 3 splits of the 300 positions instead of 16)
        CUdeviceptr o3 = gpu.poisoned(rows * heads * dim);
        rk.attention(shape, q2, width, k2, v2, dids, scratch2, scale, o3, null, rows, true);
        float[] grouped = gpu.download(o3, rows * heads * dim);
        // prepared, the grouped attention merges in the split kernel (attn_split_rows_gqa_fused); unprepared it is
        // split + combine: the same bits, and again on a second launch (the fused kernel resets its counters)
        var unprepared = rowKernels(8);
        CUdeviceptr o4 = gpu.poisoned(rows * heads * dim);
        unprepared.attention(shape, q2, width, k2, v2, dids, scratch2, scale, o4, null, rows, true);
        assertThat(gpu.download(o4, rows * heads * dim)).as("grouped split + combine").containsExactly(grouped);
        rk.attention(shape, q2, width, k2, v2, dids, scratch2, scale, o4, null, rows, true);
        assertThat(gpu.download(o4, rows * heads * dim)).as("fused grouped, second launch").containsExactly(grouped);
        gpu.cuda().checkErrors("row rope and attention");

        for (int t = 0; t < rows; t++) {
            float[] qt = Arrays.copyOfRange(rotated, t * width, t * width + heads * dim);
            double[] qRef = new double[heads * dim];
            for (int i = 0; i < qRef.length; i++) {
                qRef[i] = expectedQ[t * heads * dim + i];
            }
            assertThat(relativeError(qt, qRef)).as("row %d: q rotated at position %d", t, pos[t]).isLessThan(1e-6);
            float[] at = Arrays.copyOfRange(attn, t * heads * dim, (t + 1) * heads * dim);
            double[] ref = new double[heads * dim];
            for (int i = 0; i < ref.length; i++) {
                ref[i] = expectedAttn[t * heads * dim + i];
            }
            // the grouped kernel: the same sums in another order (3 splits of the positions instead of 16)
            float[] gt = Arrays.copyOfRange(grouped, t * heads * dim, (t + 1) * heads * dim);
            assertThat(relativeError(gt, ref)).as("row %d: grouped attention", t).isLessThan(1e-5);
            assertThat(relativeError(at, ref)).as("row %d: per-head attention over slot %d, positions 0..%d", t,
                    slot[t], pos[t]).isLessThan(1e-5);
        }
        byte[] kA = new byte[initBytes.length], kB = new byte[initBytes.length];
        byte[] vA = new byte[initBytes.length], vB = new byte[initBytes.length];
        gpu.cuda().download(k1, kA);
        gpu.cuda().download(k2, kB);
        gpu.cuda().download(v1, vA);
        gpu.cuda().download(v2, vB);
        assertThat(kB).as("K cache: each row's key at its slot and position, nothing else").isEqualTo(kA);
        assertThat(vB).as("V cache").isEqualTo(vA);
        assertThat(kB).as("the keys were written").isNotEqualTo(initBytes);
    }
}
