package aether.scheduler.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.device.cuda.CudaDevice;
import aether.device.cuda.SegmentLowering;
import aether.device.spi.DeviceCapabilities;
import aether.device.spi.SegmentExecutionException;
import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.TensorType;
import aether.runtime.protocol.DeviceKind;
import aether.runtime.protocol.SegmentSpec;
import aether.runtime.protocol.WorkerCapabilities;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.exec.HostSegmentExecutor;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * No GPU needed: what the CUDA device advertises, and that every segment it accepts is lowered correctly — each case of
 * {@link SegmentCases} lowered and run step by step by the {@link KernelEmulator} (the kernels' index arithmetic in
 * Java) equals the CPU worker's result; segments it must refuse are refused naming the node.
 */
@Timeout(120)
class SegmentLoweringTest {

    private static final HostSegmentExecutor CPU = new HostSegmentExecutor();

    @Test
    void everyCaseLoweredAndEmulatedEqualsTheCpuWorker() {
        long seed = System.nanoTime();
        List<SegmentCases.Case> cases = SegmentCases.all(new SplittableRandom(seed));
        assertThat(cases).hasSizeGreaterThan(60);
        Set<String> covered = new java.util.TreeSet<>();
        for (SegmentCases.Case c : cases) {
            SegmentLowering.Plan plan = SegmentLowering.lower(c.segment());
            List<float[]> out = new ArrayList<>();
            for (int n : c.outputSizes()) {
                float[] o = new float[n];
                java.util.Arrays.fill(o, Float.NaN);
                out.add(o);
            }
            KernelEmulator.run(plan, c.inputs(), out);
            String wrong = SegmentCases.mismatch(c, out, c.cpu(CPU));
            assertThat(wrong).as("%s (seed %d)%n%s", c, seed, SegmentCases.dump(c)).isNull();
            c.segment().graph().nodes().forEach(n -> covered.add(WorkerCapabilities.opKind(n.op())));
        }
        assertThat(covered).as("the cases cover every op kind the GPU advertises").isEqualTo(
                new java.util.TreeSet<>(SegmentLowering.OPS));
    }

    @Test
    void theCudaDeviceAdvertisesExactlyTheLoweredOpsAndF32() {
        DeviceCapabilities caps = CudaDevice.capabilities(1, 80L << 30);
        assertThat(caps.kind()).isEqualTo(DeviceKind.CUDA);
        assertThat(caps.ordinal()).isEqualTo(1);
        assertThat(caps.ops()).isEqualTo(SegmentLowering.OPS);
        assertThat(caps.dtypes()).containsExactly(GgmlType.F32);
        assertThat(caps.quantTypes()).isEmpty();
        assertThat(caps.memoryBytes()).isEqualTo((80L << 30) - (512L << 20));
        assertThat(WorkerCapabilities.allOpKinds()).containsAll(caps.ops());
        // what stays on the CPU worker: no GPU kernels for these in the scheduler path
        assertThat(caps.ops()).doesNotContain("Rope", "GetRows", "Attention", "ArgMax", "KvStore", "PagedAttention",
                "ScatterAddRows");
    }

    @Test
    void anOpWithoutAGpuKernelIsRefusedNamingTheNode() {
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", TensorType.of(DType.F32, 4, 8)));
        int e = b.add(new Op.Unary(Op.UnaryFn.EXP), x);
        int arg = b.add(new Op.ArgMax(1, false), e);
        SegmentSpec segment = spec(b.build(List.of(arg)));
        assertThatThrownBy(() -> SegmentLowering.lower(segment))
                .isInstanceOf(SegmentExecutionException.class)
                .hasMessageContaining("node %2 argmax")
                .hasMessageContaining("op ArgMax has no GPU kernel")
                .satisfies(t -> assertThat(((SegmentExecutionException) t).node()).isEqualTo(2));
        assertThat(SegmentLowering.cannotRun(segment)).contains("ArgMax");
    }

    @Test
    void nonF32ValuesAreRefused() {
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", TensorType.of(DType.F16, 4, 8)));
        int c = b.add(new Op.Cast(DType.F32), x);
        SegmentSpec segment = spec(b.build(List.of(c)));
        assertThatThrownBy(() -> SegmentLowering.lower(segment))
                .isInstanceOf(SegmentExecutionException.class)
                .hasMessageContaining("node %0 input f16[4, 8]: dtype f16 (the GPU computes f32 values only)");
    }

    @Test
    void sameShapeOperandsAreOneFlatLoopAndBroadcastKeepsOnlyTheDimensionsItNeeds() {
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", TensorType.of(DType.F32, 2, 3, 4)));
        int y = b.add(new Op.Input("y", TensorType.of(DType.F32, 2, 3, 4)));
        int z = b.add(new Op.Input("z", TensorType.of(DType.F32, 3, 1)));
        int same = b.add(new Op.Binary(Op.BinaryFn.ADD), x, y);
        int bcast = b.add(new Op.Binary(Op.BinaryFn.MUL), same, z);
        SegmentLowering.Plan plan = SegmentLowering.lower(spec(b.build(List.of(bcast))));
        var binaries = plan.steps().stream().filter(s -> s instanceof SegmentLowering.Step.Binary)
                .map(s -> (SegmentLowering.Step.Binary) s).toList();
        assertThat(binaries).hasSize(2);
        assertThat(binaries.get(0).rank()).as("same shapes: one flat loop").isEqualTo(1);
        assertThat(binaries.get(1).rank()).as("[2,3,4] * [3,1]: dims 2 | 3 | 4, none mergeable").isEqualTo(3);
        assertThat(binaries.get(1).y()).as("the graph output is written in place").isEqualTo(
                new SegmentLowering.Buf.Out(0));
        assertThat(plan.steps()).as("no copy of an output computed in place")
                .noneMatch(s -> s instanceof SegmentLowering.Step.Copy);
    }

    static SegmentSpec spec(OpGraph g) {
        return new SegmentSpec(0, g, IntStream.range(0, g.size()).boxed().toList(), 1);
    }

}
