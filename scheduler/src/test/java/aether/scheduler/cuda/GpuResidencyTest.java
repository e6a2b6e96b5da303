package aether.scheduler.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.spi.Device;
import aether.runtime.ir.Shape;
import aether.runtime.memory.MemoryManager;
import aether.runtime.memory.MemoryState;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.Location;
import aether.scheduler.client.ComputeRuntime;
import aether.scheduler.client.JobResult;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Evaluation;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * No GPU needed ({@link EmulatedGpu}: device-only buffers, the CUDA device's lowering, a use of a freed buffer fails
 * the segment): a GPU worker keeps the outputs it produced, and inputs the memory manager booked on it, between
 * segments, so a later segment on the GPU reads them without an upload; the memory manager counts those copies
 * against the GPU's budget and its evictions free them, never under a running segment; results stay those of the
 * reference, and nothing stays on the device after the job.
 */
@Timeout(60)
class GpuResidencyTest {
    static final ActorTestKit kit = ActorTestKit.create("GpuResidencyTest");
    static final JobOptions ONE_KERNEL_PER_SEGMENT = JobOptions.DEFAULT.withGranularity(
            JobOptions.Granularity.FUSION_GROUP);

    @AfterAll
    static void shutdown() {
        kit.shutdownTestKit();
    }

    static ComputeRuntime runtime(String node, EmulatedGpu gpu) {
        ComputeRuntime.Settings settings = new ComputeRuntime.Settings(node, 0, 1, 64L << 20, 1L << 30);
        return ComputeRuntime.start(kit.system(), settings, List.<Device>of(gpu));
    }

    /** A chain of GPU kernels in which an early intermediate ({@code a}) and an input ({@code w2}) are read again late. */
    record Job(Graph graph, Tensor[] outputs) {
        static Job random(long seed) {
            SplittableRandom r = new SplittableRandom(seed);
            Graph g = new Graph();
            Tensor x = g.tensor(GpuPlacementTest.gaussian(r, 16 * 64), Shape.of(16, 64));
            Tensor w1 = g.tensor(GpuPlacementTest.gaussian(r, 64 * 96), Shape.of(64, 96));
            Tensor w2 = g.tensor(scaled(GpuPlacementTest.gaussian(r, 96 * 96), 0.1f), Shape.of(96, 96));
            Tensor w3 = g.tensor(scaled(GpuPlacementTest.gaussian(r, 96 * 96), 0.1f), Shape.of(96, 96));
            Tensor a = x.matmul(w1);
            Tensor b = a.softmax(-1);
            Tensor c = b.matmul(w2);
            Tensor d = c.tanh().matmul(w3);
            Tensor e = d.add(a.matmul(w2));
            return new Job(g, new Tensor[] {e, b.sumAll()});
        }
    }

    static float[] scaled(float[] v, float s) {
        for (int i = 0; i < v.length; i++) {
            v[i] *= s;
        }
        return v;
    }

    static JobResult run(ComputeRuntime runtime, Job job) {
        JobResult result = runtime.client().submit(JobId.random(), job.graph(), ONE_KERNEL_PER_SEGMENT, job.outputs())
                .toCompletableFuture().orTimeout(30, TimeUnit.SECONDS).join();
        Evaluation ref = job.graph().evaluate(new ReferenceExecutor(), job.outputs());
        for (int i = 0; i < job.outputs().length; i++) {
            GpuPlacementTest.assertClose(result.floats(i), ref.floats(job.outputs()[i]), 1e-4);
        }
        return result;
    }

    static MemoryState memoryState(ComputeRuntime runtime) {
        TestProbe<MemoryState> probe = kit.createTestProbe();
        runtime.memoryManager().tell(new MemoryManager.GetState(probe.ref()));
        return probe.receiveMessage();
    }

    /** After the job every device copy is freed: released tensors drop theirs; the manager books nothing on the GPU. */
    static void assertNothingLeftOnTheGpu(ComputeRuntime runtime, EmulatedGpu gpu) {
        kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
            assertThat(runtime.store().size()).isZero();
            assertThat(gpu.allocatedBytes()).as("device memory after the job").isZero();
            if (gpu.residency() != null) {
                assertThat(gpu.residency().size()).isZero();
            }
            assertThat(memoryState(runtime).locations()).filteredOn(l -> l.location().equals(Location.device(0)))
                    .singleElement().satisfies(l -> assertThat(l.usedBytes()).isZero());
            return null;
        });
    }

    @Test
    void aLaterSegmentOnTheGpuReadsKeptCopiesInsteadOfUploadingThem() {
        long seed = System.nanoTime();
        Job job = Job.random(seed);
        EmulatedGpu uploading = new EmulatedGpu(0, 256L << 20, false);
        int uploadsWithout;
        try (ComputeRuntime runtime = runtime("no-residency", uploading)) {
            JobResult result = run(runtime, job);
            assertThat(result.stats().segments()).as("seed %d: one segment per kernel", seed).hasSizeGreaterThan(3);
            uploadsWithout = uploading.uploads.get();
            assertNothingLeftOnTheGpu(runtime, uploading);
        }
        EmulatedGpu keeping = new EmulatedGpu(0, 256L << 20);
        try (ComputeRuntime runtime = runtime("residency", keeping)) {
            run(runtime, job);
            long hits = keeping.residency().hits();
            System.out.printf("seed %d: %d uploads without residency, %d with, %s%n", seed, uploadsWithout,
                    keeping.uploads.get(), keeping.residency());
            assertThat(hits).as("segments that read a kept copy (seed %d)", seed).isPositive();
            assertThat(keeping.uploads.get()).as("every read is an upload or a kept copy")
                    .isEqualTo(uploadsWithout - hits);
            assertNothingLeftOnTheGpu(runtime, keeping);
            assertThat(keeping.residency().evicted()).as("released tensors dropped their copies")
                    .isEqualTo(keeping.residency().kept()).isPositive();
        }
    }

    @Test
    void aGpuBudgetTooSmallForTheKeptCopiesEvictsThemAndResultsStayRight() {
        long seed = System.nanoTime();
        Job job = Job.random(seed);
        EmulatedGpu gpu = new EmulatedGpu(0, 256L << 20);
        try (ComputeRuntime runtime = runtime("small-budget", gpu)) {
            // room for about two of the job's 16 x 96 activations: the manager must evict to book each new output
            runtime.memoryManager().tell(new MemoryManager.SetBudget(Location.device(0), 2 * 16 * 96 * 4 + 100));
            MemoryState before = memoryState(runtime);   // the budget is in place before the job
            run(runtime, job);
            MemoryState after = memoryState(runtime);
            System.out.printf("seed %d: %d manager evictions, %s, %d uploads%n", seed,
                    after.evictions() - before.evictions(), gpu.residency(), gpu.uploads.get());
            assertThat(after.evictions()).as("manager evictions (seed %d)", seed).isGreaterThan(before.evictions());
            assertThat(gpu.residency().evicted()).as("copies the worker dropped").isPositive();
            assertNothingLeftOnTheGpu(runtime, gpu);
        }
    }
}
