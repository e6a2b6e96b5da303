package aether.scheduler.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cuda.SegmentLowering;
import aether.device.spi.Device;
import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.runtime.memory.MemoryManager;
import aether.runtime.memory.MemoryState;
import aether.runtime.protocol.JobReply.JobFailed;
import aether.runtime.protocol.JobStats;
import aether.runtime.protocol.Location;
import aether.scheduler.client.ComputeRuntime;
import aether.scheduler.client.JobFailedException;
import aether.scheduler.client.JobResult;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Evaluation;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * No GPU needed: the scheduler with a GPU worker that advertises what a CUDA device advertises ({@link EmulatedGpu}:
 * device-only buffers, the segment lowering of the CUDA device, launches emulated on the CPU). Segments the GPU can run
 * go there, the others to the CPU worker, results equal the reference; the GPU's budget is one of the memory
 * manager's locations; a graph no worker can run fails naming the op.
 */
@Timeout(60)
class GpuPlacementTest {
    static final ActorTestKit kit = ActorTestKit.create("GpuPlacementTest");

    @AfterAll
    static void shutdown() {
        kit.shutdownTestKit();
    }

    static ComputeRuntime runtime(String node, int cpuWorkers, EmulatedGpu gpu) {
        ComputeRuntime.Settings settings = new ComputeRuntime.Settings(node, cpuWorkers, 1, 64L << 20, 1L << 30);
        List<Device> devices = new ArrayList<>(ComputeRuntime.cpuDevices(settings));
        devices.add(gpu);
        return ComputeRuntime.start(kit.system(), settings, devices);
    }

    static float[] gaussian(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) SegmentCases.gauss(r);
        }
        return v;
    }

    static void assertClose(float[] actual, float[] expected, double tol) {
        assertThat(actual).hasSameSizeAs(expected);
        for (int i = 0; i < expected.length; i++) {
            assertThat((double) actual[i]).as("element %d", i).isCloseTo(expected[i],
                    org.assertj.core.data.Offset.offset(tol * (1 + Math.abs(expected[i]))));
        }
    }

    static JobResult run(ComputeRuntime runtime, Graph g, Tensor... outputs) {
        return runtime.client().submit(g, outputs).toCompletableFuture().orTimeout(30, TimeUnit.SECONDS).join();
    }

    @Test
    void aGraphOfGpuOpsRunsWhollyOnTheGpuWorkerAndEqualsTheReference() {
        EmulatedGpu gpu = new EmulatedGpu(0, 256L << 20);
        try (ComputeRuntime runtime = runtime("gpu-only", 0, gpu)) {
            SplittableRandom r = new SplittableRandom(System.nanoTime());
            Graph g = new Graph();
            Tensor x = g.tensor(gaussian(r, 9 * 70), Shape.of(9, 70));
            Tensor w = g.tensor(gaussian(r, 33 * 70), Shape.of(33, 70));
            Tensor b = g.tensor(gaussian(r, 33), Shape.of(33));
            Tensor h = x.rmsNorm(1e-5).linear(w, b).gelu();
            Tensor p = h.softmax(-1);
            Tensor loss = p.mul(h).sumAll();
            JobResult result = run(runtime, g, p, loss);
            Evaluation ref = g.evaluate(new ReferenceExecutor(), p, loss);
            assertClose(result.floats(0), ref.floats(p), 1e-5);
            assertClose(result.floats(1), ref.floats(loss), 1e-5);
            assertThat(gpu.segments.get()).isPositive();
            assertThat(result.stats().segments()).extracting(JobStats.SegmentStat::ranOn)
                    .containsOnly("gpu-only/cuda-0");
            assertThat(SegmentLowering.OPS).containsAll(gpu.opKinds);
            // the GPU's memory is one of the memory manager's locations, with the device's budget
            TestProbe<MemoryState> probe = kit.createTestProbe();
            runtime.memoryManager().tell(new MemoryManager.GetState(probe.ref()));
            MemoryState state = probe.receiveMessage();
            assertThat(state.locations()).anySatisfy(l -> {
                assertThat(l.location()).isEqualTo(Location.device(0));
                assertThat(l.budgetBytes()).isEqualTo(256L << 20);
            });
            assertThat(ComputeRuntime.memoryBudgets(1L << 30, List.of(gpu))).containsEntry(Location.HOST, 1L << 30)
                    .containsEntry(Location.device(0), 256L << 20).hasSize(2);
            kit.createTestProbe().awaitAssert(java.time.Duration.ofSeconds(10), () -> {
                assertThat(gpu.allocatedBytes()).as("device buffers freed after the job").isZero();
                assertThat(runtime.store().size()).isZero();
                return null;
            });
        }
    }

    @Test
    void segmentsWithOpsTheGpuLacksGoToTheCpuWorkerAndTheRestMayGoToEither() {
        EmulatedGpu gpu = new EmulatedGpu(0, 256L << 20);
        try (ComputeRuntime runtime = runtime("mixed", 1, gpu)) {
            SplittableRandom r = new SplittableRandom(System.nanoTime());
            Graph g = new Graph();
            List<Tensor> outs = new ArrayList<>();
            // independent branches: the scheduler spreads them over both workers
            for (int i = 0; i < 8; i++) {
                Tensor a = g.tensor(gaussian(r, 40 * 64), Shape.of(40, 64));
                Tensor b = g.tensor(gaussian(r, 64 * 48), Shape.of(64, 48));
                outs.add(a.matmul(b).tanh().sum(1));
            }
            // rope and argmax have no GPU kernel; an f16 input is not a GPU value type
            Tensor q = g.tensor(gaussian(r, 4 * 2 * 8), Shape.of(4, 2, 8));
            Tensor pos = g.indices(new int[] {0, 1, 2, 3}, Shape.of(4));
            outs.add(q.rope(pos, aether.runtime.ir.Op.RopeMode.NORMAL, 8, 10000, 1).scale(2));
            Tensor half = g.tensor(gaussian(r, 50), Shape.of(5, 10), DType.F16);
            outs.add(half.cast(DType.F32).softmax(-1));
            Tensor[] outputs = outs.toArray(Tensor[]::new);
            JobResult result = run(runtime, g, outputs);
            Evaluation ref = g.evaluate(new ReferenceExecutor(), outputs);
            for (int i = 0; i < outputs.length; i++) {
                assertClose(result.floats(i), ref.floats(outputs[i]), 1e-4);
            }
            List<String> ranOn = result.stats().segments().stream().map(JobStats.SegmentStat::ranOn).toList();
            assertThat(ranOn).as("both workers ran segments").contains("mixed/cpu-0", "mixed/cuda-0");
            assertThat(gpu.opKinds).doesNotContain("Rope", "Cast").isSubsetOf(SegmentLowering.OPS);
            assertThat(ranOn).as("segments on the GPU worker (the emulated device counts %d)", gpu.segments.get())
                    .filteredOn("mixed/cuda-0"::equals).hasSize(gpu.segments.get());
        }
    }

    @Test
    void withOnlyAGpuWorkerAGraphItCannotRunFailsNamingTheOp() {
        EmulatedGpu gpu = new EmulatedGpu(0, 64L << 20);
        try (ComputeRuntime runtime = runtime("no-cpu", 0, gpu)) {
            Graph g = new Graph();
            Tensor x = g.tensor(new float[] {1, 5, 2, 7, 3, 0}, Shape.of(2, 3));
            Tensor idx = x.exp().argmax(1);
            Throwable error = null;
            try {
                run(runtime, g, idx);
            } catch (CompletionException e) {
                error = e.getCause();
            }
            assertThat(error).isInstanceOf(JobFailedException.class);
            JobFailed failure = ((JobFailedException) error).failure();
            assertThat(failure.reason()).isEqualTo(JobFailed.Reason.NO_WORKER);
            assertThat(failure.message()).contains("op ArgMax (argmax) is not supported by no-cpu/cuda-0");
        }
    }
}
