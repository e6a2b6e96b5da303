package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.device.cpu.KernelPool;
import aether.device.cpu.kernel.Matmul;
import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.exec.CacheTensor;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * kv_store + paged_attention: the reference executor against a float64 attention over the same positions written
 * directly, and the kernel graph against the reference executor, over two steps that share one cache (the second
 * step's tokens attend to what the first stored), with GQA, sliding windows, soft-capping and scattered blocks. With
 * an f16 cache and enough (token, KV head) pairs the kernel widens each cache row once for its group of query heads;
 * the cases with groups of 4 reach that path, and the 2-token second step of the 8-over-2-heads case the per-head one;
 * every step is run again on per-head items and must give the same floats bit for bit.
 */
class KernelGraphPagedAttentionTest {

    private static final int BS = 4;          // positions per block
    private static final int BLOCKS = 8;      // pool
    private static final int PER_SEQ = 4;     // block-table width

    /** A two-sequence step: tokens of sequence 0 then sequence 1, at the given positions. */
    private record Step(int[] seq, int[] pos) {}

    private static final int[][] TABLES = {{5, 2, 7, 0}, {1, 6, 3, 4}};

    private static int slot(int seq, int pos) {
        return TABLES[seq][pos / BS] * BS + pos % BS;
    }

    private record Built(Graph g, Tensor q, Tensor k, Tensor v, Tensor pos, Tensor slots, Tensor table, Tensor kc,
            Tensor vc, Tensor out) {}

    private static Built build(int tokens, int hq, int hkv, int d, DType kv, double scale, int window, double cap) {
        Graph g = new Graph();
        Tensor q = g.input("q", Shape.of(tokens, hq, d), DType.F32);
        Tensor k = g.input("k", Shape.of(tokens, hkv * d), DType.F32);
        Tensor v = g.input("v", Shape.of(tokens, hkv * d), DType.F32);
        Tensor pos = g.input("pos", Shape.of(tokens), DType.I32);
        Tensor slots = g.input("slots", Shape.of(tokens), DType.I32);
        Tensor table = g.input("table", Shape.of(tokens, PER_SEQ), DType.I32);
        Tensor kc = g.input("kc", Shape.of(BLOCKS * BS, hkv * d), kv);
        Tensor vc = g.input("vc", Shape.of(BLOCKS * BS, hkv * d), kv);
        Tensor out = q.pagedAttention(kc.kvStore(k, slots), vc.kvStore(v, slots), pos, table, hkv, scale, window,
                cap, BS);
        return new Built(g, q, k, v, pos, slots, table, kc, vc, out);
    }

    private static double[] random(Random r, int n) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian());
        }
        return a;
    }

    @ParameterizedTest
    @CsvSource({
        "4, 2, 8, f32, 0, 0",
        "4, 4, 8, f16, 0, 0",
        "6, 2, 32, q8_0, 0, 0",
        "4, 1, 8, f32, 3, 0",
        "2, 2, 16, f16, 5, 2.5",
        "16, 4, 64, f16, 0, 0",    // enough work to split over the pool; (token, KV head) items, rows widened once
        "8, 2, 16, f16, 3, 2.5"})  // the same with window and cap; its 2-token second step takes per-head items
    void shouldMatchFloat64AttentionAndTheReferenceExecutor(int hq, int hkv, int d, String kvName, int window,
            double cap) {
        DType kv = kvName.equals("q8_0") ? DType.quantized(GgmlType.Q8_0) : kvName.equals("f16") ? DType.F16
                : DType.F32;
        double scale = 1 / Math.sqrt(d);
        Random r = new Random(hq * 31L + d);
        // step 1: 7 tokens of sequence 0 (positions 0..6) and 5 of sequence 1 (0..4); step 2: one token each
        Step[] steps = {
            new Step(new int[] {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, new int[] {0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4}),
            new Step(new int[] {1, 0}, new int[] {5, 7})};
        CacheTensor refK = new CacheTensor(kv, BLOCKS * BS, hkv * d);
        CacheTensor refV = new CacheTensor(kv, BLOCKS * BS, hkv * d);
        // the logical cache (what each (sequence, position) holds after rounding), for the float64 check
        double[][][] keys = new double[2][16][];
        double[][][] values = new double[2][16][];
        try (Arena arena = Arena.ofShared(); KernelPool pool = new KernelPool(2, 0)) {
            long rowBytes = kv.ggml().bytesFor(hkv * d);
            MemorySegment kSeg = arena.allocate(rowBytes * BLOCKS * BS, 64);
            MemorySegment vSeg = arena.allocate(rowBytes * BLOCKS * BS, 64);
            Matmul matmul = new Matmul(pool);
            for (Step st : steps) {
                int t = st.seq().length;
                Built b = build(t, hq, hkv, d, kv, scale, window, cap);
                double[] q = random(r, t * hq * d);
                double[] k = random(r, t * hkv * d);
                double[] v = random(r, t * hkv * d);
                int[] slots = new int[t];
                int[] table = new int[t * PER_SEQ];
                for (int i = 0; i < t; i++) {
                    slots[i] = slot(st.seq()[i], st.pos()[i]);
                    System.arraycopy(TABLES[st.seq()[i]], 0, table, i * PER_SEQ, PER_SEQ);
                }
                // reference executor
                b.g().set(b.q(), HostTensor.of(q, Shape.of(t, hq, d), DType.F32));
                b.g().set(b.k(), HostTensor.of(k, Shape.of(t, hkv * d), DType.F32));
                b.g().set(b.v(), HostTensor.of(v, Shape.of(t, hkv * d), DType.F32));
                b.g().set(b.pos(), HostTensor.ofInts(st.pos(), Shape.of(t)));
                b.g().set(b.slots(), HostTensor.ofInts(slots, Shape.of(t)));
                b.g().set(b.table(), HostTensor.ofInts(table, Shape.of(t, PER_SEQ)));
                b.g().set(b.kc(), refK);
                b.g().set(b.vc(), refV);
                double[] ref = b.out().toDoubleArray(new ReferenceExecutor());
                // float64 attention over the logical cache rows
                for (int i = 0; i < t; i++) {
                    keys[st.seq()[i]][st.pos()[i]] = row(refK, slots[i], hkv * d);
                    values[st.seq()[i]][st.pos()[i]] = row(refV, slots[i], hkv * d);
                }
                double[] expected = attention(q, st, keys, values, hq, hkv, d, scale, window, cap);
                for (int i = 0; i < expected.length; i++) {
                    assertThat(ref[i]).as("reference element %d", i).isCloseTo(expected[i],
                            org.assertj.core.data.Offset.offset(1e-5));
                }
                // kernel graph over the same steps, its own cache segments
                Program.Snapshot snap = Program.from(b.g(), List.of(), b.out());
                int[] map = snap.mapping();
                try (KernelGraph kg = KernelGraph.compile(snap.program(), matmul, pool,
                        Map.of(map[b.kc().id()], kSeg, map[b.vc().id()], vSeg))) {
                    write(kg.input(map[b.q().id()]), q);
                    write(kg.input(map[b.k().id()]), k);
                    write(kg.input(map[b.v().id()]), v);
                    MemorySegment.copy(st.pos(), 0, kg.input(map[b.pos().id()]), ValueLayout.JAVA_INT_UNALIGNED, 0, t);
                    MemorySegment.copy(slots, 0, kg.input(map[b.slots().id()]), ValueLayout.JAVA_INT_UNALIGNED, 0,
                            t);
                    MemorySegment.copy(table, 0, kg.input(map[b.table().id()]), ValueLayout.JAVA_INT_UNALIGNED, 0,
                            table.length);
                    kg.run();
                    float[] fast = kg.output(0).toArray(ValueLayout.JAVA_FLOAT);
                    KernelSteps.PagedAttention.groupKvHeads = false;   // the same step again on per-head items
                    try {
                        kg.run();
                    } finally {
                        KernelSteps.PagedAttention.groupKvHeads = true;
                    }
                    assertThat(kg.output(0).toArray(ValueLayout.JAVA_FLOAT)).as("per-head items, bit for bit")
                            .isEqualTo(fast);
                    for (int i = 0; i < ref.length; i++) {
                        assertThat((double) fast[i]).as("kernel element %d", i).isCloseTo(ref[i],
                                org.assertj.core.data.Offset.offset(2e-5 * (1 + Math.abs(ref[i]))));
                    }
                }
            }
        }
    }

    private static double[] row(CacheTensor c, int slot, int width) {
        double[] r = new double[width];
        for (int i = 0; i < width; i++) {
            r[i] = c.get(slot, i);
        }
        return r;
    }

    private static void write(MemorySegment s, double[] v) {
        for (int i = 0; i < v.length; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) v[i]);
        }
    }

    private static double[] attention(double[] q, Step st, double[][][] keys, double[][][] values, int hq, int hkv,
            int d, double scale, int window, double cap) {
        int t = st.seq().length;
        double[] out = new double[t * hq * d];
        for (int i = 0; i < t; i++) {
            int seq = st.seq()[i];
            int pos = st.pos()[i];
            int first = window == 0 ? 0 : Math.max(0, pos - window + 1);
            for (int h = 0; h < hq; h++) {
                int kh = h / (hq / hkv);
                double[] s = new double[pos + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = first; j <= pos; j++) {
                    double dot = 0;
                    for (int c = 0; c < d; c++) {
                        dot += q[(i * hq + h) * d + c] * keys[seq][j][kh * d + c];
                    }
                    dot *= scale;
                    s[j] = cap > 0 ? cap * Math.tanh(dot / cap) : dot;
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = first; j <= pos; j++) {
                    s[j] = Math.exp(s[j] - max);
                    sum += s[j];
                }
                for (int j = first; j <= pos; j++) {
                    for (int c = 0; c < d; c++) {
                        out[(i * hq + h) * d + c] += s[j] / sum * values[seq][j][kh * d + c];
                    }
                }
            }
        }
        return out;
    }

    @Test
    void shouldRoundStoredRowsToTheCacheType() {
        CacheTensor q8 = new CacheTensor(DType.quantized(GgmlType.Q8_0), 1, 32);
        Graph g = new Graph();
        Tensor cache = g.input("c", Shape.of(1, 32), DType.quantized(GgmlType.Q8_0));
        Tensor rows = g.input("r", Shape.of(1, 32), DType.F32);
        Tensor slots = g.indices(new int[] {0}, Shape.of(1));
        Tensor stored = cache.kvStore(rows, slots);
        // one visible position: attention returns the stored value row itself
        Tensor q = g.tensor(new float[32], Shape.of(1, 1, 32));
        Tensor out = q.pagedAttention(stored, stored, g.indices(new int[] {0}, Shape.of(1)),
                g.indices(new int[] {0}, Shape.of(1, 1)), 1, 1.0, 0, 0, 1);
        double[] x = new double[32];
        for (int i = 0; i < 32; i++) {
            x[i] = (float) ((i - 13) * 0.37);
        }
        g.set(cache, q8);
        g.set(rows, HostTensor.of(x, Shape.of(1, 32), DType.F32));
        double[] read = out.toDoubleArray(new ReferenceExecutor());
        double d = Float.float16ToFloat(Float.floatToFloat16((float) (18 * 0.37) / 127));
        for (int i = 0; i < 32; i++) {
            double want = Math.rint((float) x[i] * (1.0f / ((float) (18 * 0.37) / 127))) * d;
            assertThat(q8.get(0, i)).as("q8_0 value %d", i).isCloseTo(want, org.assertj.core.data.Offset.offset(1e-9));
            assertThat(read[i]).as("attention over it, %d", i).isCloseTo((float) want,
                    org.assertj.core.data.Offset.offset(1e-6));
            assertThat(Math.abs(q8.get(0, i) - x[i])).isLessThanOrEqualTo(d / 2 + 1e-3);
        }
    }

    @Test
    void shouldRejectBrokenShapesWithTheRule() {
        Graph g = new Graph();
        Tensor cache = g.input("c", Shape.of(16, 30), DType.F16);
        Tensor rows = g.input("r", Shape.of(2, 32), DType.F32);
        Tensor slots = g.input("s", Shape.of(2), DType.I32);
        assertThatThrownBy(() -> cache.kvStore(rows, slots)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("kv_store rows are f32[tokens, 30]");
        Tensor q = g.input("q", Shape.of(2, 3, 10), DType.F32);
        Tensor pos = g.input("p", Shape.of(2), DType.I32);
        Tensor table = g.input("t", Shape.of(2, 4), DType.I32);
        assertThatThrownBy(() -> q.pagedAttention(cache, cache, pos, table, 2, 1, 0, 0, 16))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiple of kvHeads");
        assertThat(q.pagedAttention(cache, cache, pos, table, 3, 1, 0, 0, 16).shape()).isEqualTo(Shape.of(2, 3, 10));
        assertThatThrownBy(() -> q.pagedAttention(cache, cache, pos, table.reshape(8), 3, 1, 0, 0, 16))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("block tables");
        assertThatThrownBy(() -> g.input("bad", Shape.of(16, 30), DType.quantized(GgmlType.Q8_0)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(new Op.KvStore().name()).isEqualTo("kv_store");
    }
}
