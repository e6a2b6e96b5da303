package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.fusion.FusionGroup;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.lang.management.ManagementFactory;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Compiled execution (passes + fusion + arena) against the reference executor on the original graph, bit for bit. */
@Timeout(120)
class CompiledGraphTest {

    /** Reference outputs of the source program for run-time inputs {@code values} (keyed by source input id). */
    private static List<HostTensor> reference(Program p, Map<Integer, float[]> values) {
        Map<Integer, TensorValue> in = new HashMap<>(p.constants());
        for (Map.Entry<Integer, float[]> e : values.entrySet()) {
            in.put(e.getKey(), HostTensor.ofFloats(e.getValue(), p.graph().node(e.getKey()).shape()));
        }
        return new ReferenceExecutor().executeNow(p.graph(), in);
    }

    private static void assertMatchesReference(Models.Model model, Compiler compiler, int runs, long seed) {
        Program.Snapshot snap = model.snapshot();
        Program p = snap.program();
        Random rnd = new Random(seed);
        try (CompiledGraph cg = compiler.compile(p)) {
            for (int run = 0; run < runs; run++) {
                Map<Integer, float[]> values = new HashMap<>();
                for (int id : p.runtimeInputs()) {
                    float[] v = Models.randomFloats(p.graph().node(id).shape().sizeAsInt(), rnd);
                    values.put(id, v);
                    cg.set(id, v);
                }
                cg.run();
                List<HostTensor> expected = reference(p, values);
                for (int i = 0; i < expected.size(); i++) {
                    assertThat(cg.outputFloats(i)).as("run %d output %d", run, i)
                            .isEqualTo(expected.get(i).toFloatArray());   // Arrays.equals: bitwise
                }
            }
        }
    }

    @Test
    void mlpFusedAndUnfusedMatchTheReferenceBitForBit() {
        Models.Model mlp = Models.mlp(4, 16, 32, 8, 1);
        assertMatchesReference(mlp, Compiler.unfused(), 3, 2);
        assertMatchesReference(mlp, Compiler.standard(), 3, 3);
        try (CompiledGraph fused = Compiler.standard().compile(mlp.snapshot().program());
                CompiledGraph unfused = Compiler.unfused().compile(mlp.snapshot().program())) {
            assertThat(fused.dispatches()).isLessThan(unfused.dispatches());
            assertThat(fused.fusionPlan().groups()).anyMatch(gr -> gr.kind() == FusionGroup.Kind.MATMUL_EPILOGUE
                    && gr.epilogue().size() == 2);   // bias add + gelu / relu
        }
    }

    @Test
    void transformerBlockFusedAndUnfusedMatchTheReferenceBitForBit() {
        Models.Model block = Models.transformerBlock(6, 16, 2, 24, 4);
        assertMatchesReference(block, Compiler.unfused(), 2, 5);
        assertMatchesReference(block, Compiler.standard(), 2, 6);
        try (CompiledGraph fused = Compiler.standard().compile(block.snapshot().program())) {
            List<FusionGroup> groups = fused.fusionPlan().groups();
            assertThat(groups).anyMatch(gr -> gr.kind() == FusionGroup.Kind.ROW_OP && !gr.epilogue().isEmpty());
            assertThat(groups).anyMatch(gr -> gr.kind() == FusionGroup.Kind.ROW_OP && !gr.prologue().isEmpty());
            assertThat(fused.dump()).contains("fuse %").contains("arena: peak").contains("passes:");
        }
    }

    @Test
    void arenaPeakIsBelowTheSumOfIntermediatesForRealModels() {
        Map<String, Models.Model> models = new java.util.LinkedHashMap<>();
        models.put("mlp 32x256-1024-256", Models.mlp(32, 256, 1024, 256, 7));
        models.put("transformer block t=64 d=256 h=4 ffn=688", Models.transformerBlock(64, 256, 4, 688, 8));
        for (Map.Entry<String, Models.Model> e : models.entrySet()) {
            for (boolean fuse : new boolean[] {false, true}) {
                try (CompiledGraph cg = (fuse ? Compiler.standard() : Compiler.unfused())
                        .compile(e.getValue().snapshot().program())) {
                    var plan = cg.arenaPlan();
                    assertThat(plan.peakBytes()).isLessThan(plan.intermediateBytes());
                    assertThat(plan.peakBytes()).isGreaterThanOrEqualTo(plan.lifetimes().stream()
                            .mapToLong(aether.scheduler.memory.Lifetime::bytes).max().orElse(0));
                    // Reported for BENCHMARKS.md.
                    System.out.println("[arena] " + e.getKey() + (fuse ? ", fused" : ", unfused") + ", "
                            + cg.dispatches() + " dispatches: " + plan.summary());
                }
            }
        }
    }

    @Test
    void repeatedRunsAllocateNothing() {
        Models.Model block = Models.transformerBlock(8, 32, 2, 48, 9);
        Program p = block.snapshot().program();
        var bean = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long thread = Thread.currentThread().threadId();
        for (Compiler c : List.of(Compiler.unfused(), Compiler.standard())) {
            try (CompiledGraph cg = c.compile(p)) {
                float[] x = Models.randomFloats(8 * 32, new Random(10));
                int input = p.runtimeInputs().get(0);
                // Warm up until C2 has compiled every step: interpreted Vector API code boxes its vectors, compiled
                // code does not. Up to 40k runs; on a quiet machine about 5k suffice.
                for (int round = 0; round < 40; round++) {
                    long start = bean.getThreadAllocatedBytes(thread);
                    for (int i = 0; i < 1000; i++) {
                        cg.set(input, x);
                        cg.run();
                    }
                    if (bean.getThreadAllocatedBytes(thread) - start < 1024) {
                        break;
                    }
                }
                long before = bean.getThreadAllocatedBytes(thread);
                for (int i = 0; i < 200; i++) {
                    cg.set(input, x);
                    cg.run();
                }
                long allocated = bean.getThreadAllocatedBytes(thread) - before;
                // A constant allowance for the measurement itself; anything per run would be >= 200 x its size.
                assertThat(allocated).as("bytes allocated by 200 runs").isLessThan(2048);
            }
        }
    }

    @Test
    void unsupportedGraphsAreRejectedNamingTheNode() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(2, 3), DType.F16);
        Program p = Program.from(g, List.of(), x.exp()).program();
        assertThatThrownBy(() -> Compiler.standard().compile(p)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("%0").hasMessageContaining("f16").hasMessageContaining("expected: f32");
        Graph g2 = new Graph();
        Tensor q = g2.input("q", Shape.of(1, 2, 4), DType.F32);
        Program p2 = Program.from(g2, List.of(), q.attention(q, q, 0.5, 0)).program();
        assertThatThrownBy(() -> Compiler.standard().compile(p2)).hasMessageContaining("attention")
                .hasMessageContaining("not supported");
    }

    @Test
    void layoutOpsAndReductionsRunCompiled() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(3, 4, 5), DType.F32);
        Tensor a = x.permute(2, 0, 1).slice(0, 1, 4).pad(2, 1, 2).exp();
        Tensor b = x.sum(1).concat(0, x.max(1), x.mean(1));
        Tensor c = x.reshape(12, 5).expand(Shape.of(2, 12, 5)).layerNorm(1e-3).sum(-1, true);
        Models.Model m = new Models.Model(g, List.of(a, b, c, x), List.of(), List.of(x));
        assertMatchesReference(m, Compiler.unfused(), 2, 11);
        assertMatchesReference(m, Compiler.standard(), 2, 12);
    }

    private static aether.scheduler.exec.WeightRows f16Weight(java.lang.foreign.Arena arena, int rows, int cols,
            Random rnd) {
        var seg = arena.allocate((long) rows * cols * 2);
        for (long i = 0; i < (long) rows * cols; i++) {
            seg.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN),
                    i * 2, Float.floatToFloat16((float) rnd.nextGaussian() * 0.3f));
        }
        return new aether.scheduler.exec.SegmentWeightRows(aether.runtime.tensor.GgmlType.F16, seg, rows, cols);
    }

    @Test
    void storedWeightsAreReadRowByRowWithFusedEpilogues() {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            Random rnd = new Random(21);
            Graph g = new Graph();
            Tensor x = g.input("x", Shape.of(2, 3, 16), DType.F32);
            Tensor w1 = g.weight(f16Weight(arena, 24, 16, rnd));        // [out, in]: matmul_t
            Tensor w2 = g.weight(f16Weight(arena, 24, 8, rnd));         // [k, n]: matmul
            Tensor bias = g.tensor(Models.randomFloats(24, rnd), Shape.of(24));
            Tensor y = x.linear(w1, bias).silu().matmul(w2);
            Models.Model m = new Models.Model(g, List.of(y), List.of(w1, w2, bias), List.of(x));
            assertMatchesReference(m, Compiler.unfused(), 2, 22);
            assertMatchesReference(m, Compiler.standard(), 2, 23);
            try (CompiledGraph cg = Compiler.standard().compile(m.snapshot().program())) {
                assertThat(cg.fusionPlan().groups().get(0).kind()).isEqualTo(FusionGroup.Kind.MATMUL_EPILOGUE);
            }
            Graph bad = new Graph();
            Tensor w = bad.weight(f16Weight(arena, 4, 4, rnd));
            Program p = Program.from(bad, List.of(w), w.getRows(bad.indices(new int[] {1}, Shape.of(1)))).program();
            assertThatThrownBy(() -> Compiler.standard().compile(p)).hasMessageContaining("only as the right operand");
        }
    }
}
