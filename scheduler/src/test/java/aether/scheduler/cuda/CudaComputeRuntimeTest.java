package aether.scheduler.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import aether.device.cuda.CudaDevice;
import aether.device.cuda.CudaDriver;
import aether.device.cuda.GpuWorkers;
import aether.runtime.ir.Shape;
import aether.runtime.memory.MemoryManager;
import aether.runtime.memory.MemoryState;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.JobStats;
import aether.scheduler.client.ComputeRuntime;
import aether.scheduler.client.JobResult;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Evaluation;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * End to end on a GPU: {@link ComputeRuntime} started with GPU workers ({@link GpuWorkers#ON}) runs user graphs through
 * the scheduler on the CUDA worker (alone, and next to a CPU worker), and the results equal the reference executor's
 * within |gpu - ref| <= 1e-4 x (1 + |ref|) (f32 kernels against the reference's float64 arithmetic), also when chained
 * segments read device copies kept between them and the memory manager evicts those. Skipped, with the reason, where
 * no CUDA device is present.
 */
@Tag("gpu")
@Timeout(120)
class CudaComputeRuntimeTest {

    private static ActorSystem<Void> system;

    @BeforeAll
    static void start() {
        system = ActorSystem.create(Behaviors.empty(), "CudaComputeRuntimeTest");
    }

    @AfterAll
    static void stop() {
        system.terminate();
    }

    @BeforeEach
    void requireGpu() {
        assumeTrue(CudaDriver.availability().available(), () -> "GPU test skipped: CUDA "
                + CudaDriver.availability().describe());
    }

    static float[] gaussian(SplittableRandom r, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (std * SegmentCases.gauss(r));
        }
        return v;
    }

    static void assertClose(String what, float[] actual, float[] expected) {
        assertThat(actual).as(what).hasSameSizeAs(expected);
        for (int i = 0; i < expected.length; i++) {
            double tol = 1e-4 * (1 + Math.abs(expected[i]));
            assertThat((double) actual[i]).as("%s element %d", what, i).isCloseTo(expected[i],
                    org.assertj.core.data.Offset.offset(tol));
        }
    }

    @Test
    void aTwoLayerNetworkRunsOnTheGpuWorkerAndEqualsTheReference() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        SplittableRandom r = new SplittableRandom(seed);
        try (ComputeRuntime runtime = ComputeRuntime.start(system, ComputeRuntime.Settings.of("gpu-e2e", 0),
                GpuWorkers.ON)) {
            Graph g = new Graph();
            Tensor x = g.tensor(gaussian(r, 37 * 300, 1), Shape.of(37, 300));
            Tensor w1 = g.tensor(gaussian(r, 515 * 300, 0.05), Shape.of(515, 300));
            Tensor b1 = g.tensor(gaussian(r, 515, 0.1), Shape.of(515));
            Tensor w2 = g.tensor(gaussian(r, 515 * 129, 0.05), Shape.of(515, 129));
            Tensor h = x.rmsNorm(1e-5).linear(w1, b1).silu();
            Tensor logits = h.matmul(w2);
            Tensor p = logits.softmax(-1);
            Tensor loss = p.mul(logits).sumAll();
            Tensor[] outs = {p, loss, h.max(1), h.transpose(0, 1).mean(1)};
            JobResult result = runtime.client().submit(g, outs).toCompletableFuture().orTimeout(60, TimeUnit.SECONDS)
                    .join();
            Evaluation ref = g.evaluate(new ReferenceExecutor(), outs);
            for (int i = 0; i < outs.length; i++) {
                assertClose("output " + i + " (seed " + seed + ")", result.floats(i), ref.floats(outs[i]));
            }
            assertThat(result.stats().segments()).extracting(JobStats.SegmentStat::ranOn)
                    .allMatch(w -> w.startsWith("gpu-e2e/cuda-"));
        }
    }

    @Test
    void nextToACpuWorkerBothRunSegmentsAndTheResultsEqualTheReference() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        SplittableRandom r = new SplittableRandom(seed);
        try (ComputeRuntime runtime = ComputeRuntime.start(system, ComputeRuntime.Settings.of("mixed-e2e", 1),
                GpuWorkers.ON)) {
            Graph g = new Graph();
            List<Tensor> outs = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                Tensor a = g.tensor(gaussian(r, 65 * 200, 1), Shape.of(65, 200));
                Tensor b = g.tensor(gaussian(r, 200 * 70, 0.1), Shape.of(200, 70));
                outs.add(a.matmul(b).gelu().layerNorm(1e-5).sum(1));
            }
            Tensor q = g.tensor(gaussian(r, 6 * 2 * 8, 1), Shape.of(6, 2, 8));
            Tensor pos = g.indices(new int[] {0, 1, 2, 3, 4, 5}, Shape.of(6));
            outs.add(q.rope(pos, aether.runtime.ir.Op.RopeMode.NEOX, 8, 10000, 1).scale(0.5));
            Tensor[] outputs = outs.toArray(Tensor[]::new);
            JobResult result = runtime.client().submit(g, outputs).toCompletableFuture()
                    .orTimeout(60, TimeUnit.SECONDS).join();
            Evaluation ref = g.evaluate(new ReferenceExecutor(), outputs);
            for (int i = 0; i < outputs.length; i++) {
                assertClose("output " + i + " (seed " + seed + ")", result.floats(i), ref.floats(outputs[i]));
            }
            List<String> ranOn = result.stats().segments().stream().map(JobStats.SegmentStat::ranOn).toList();
            System.out.println("segments ran on " + ranOn);
            assertThat(ranOn).contains("mixed-e2e/cpu-0").anyMatch(w -> w.startsWith("mixed-e2e/cuda-"));
        }
    }

    static MemoryState memoryState(ComputeRuntime runtime) {
        return AskPattern.<MemoryManager.Command, MemoryState>ask(runtime.memoryManager(), MemoryManager.GetState::new,
                Duration.ofSeconds(5), system.scheduler()).toCompletableFuture().join();
    }

    /** Runs {@code check} until it passes, at most 10 s (device frees are queued on the device thread). */
    static void eventually(Runnable check) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            try {
                check.run();
                return;
            } catch (AssertionError e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                try {
                    Thread.sleep(10);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
    }

    /**
     * Residency on the GPU: with one kernel per segment, a chain of segments on the CUDA worker reads each intermediate
     * from the copy kept on the device (uploads skipped; only the job's inputs are uploaded); with the memory manager's
     * budget for the GPU cut to about two activations, it evicts kept copies (the device frees them) and the results
     * still equal the reference; after each job nothing but the scratch area is left on the device.
     */
    @Test
    void chainedSegmentsReadKeptDeviceCopiesAndASmallBudgetEvictsThem() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        SplittableRandom r = new SplittableRandom(seed);
        try (ComputeRuntime runtime = ComputeRuntime.start(system, ComputeRuntime.Settings.of("resident-e2e", 0),
                GpuWorkers.ON)) {
            List<CudaDevice> gpus = runtime.devices().stream().filter(d -> d instanceof CudaDevice)
                    .map(d -> (CudaDevice) d).toList();
            Graph g = new Graph();
            Tensor x = g.tensor(gaussian(r, 64 * 256, 1), Shape.of(64, 256));
            Tensor w1 = g.tensor(gaussian(r, 256 * 256, 0.05), Shape.of(256, 256));
            Tensor w2 = g.tensor(gaussian(r, 256 * 256, 0.05), Shape.of(256, 256));
            Tensor a = x.matmul(w1);
            Tensor b = a.softmax(-1);
            Tensor c = b.matmul(w2).tanh();
            Tensor e = c.add(a.matmul(w2));
            Tensor[] outs = {e, b.sumAll()};
            JobOptions perKernel = JobOptions.DEFAULT.withGranularity(JobOptions.Granularity.FUSION_GROUP);
            Evaluation ref = g.evaluate(new ReferenceExecutor(), outs);
            for (boolean smallBudget : new boolean[] {false, true}) {
                if (smallBudget) {
                    for (CudaDevice gpu : gpus) {
                        runtime.memoryManager().tell(new MemoryManager.SetBudget(
                                aether.runtime.protocol.Location.device(gpu.capabilities().ordinal()),
                                2L * 64 * 256 * 4 + 100));
                    }
                }
                long skippedBefore = gpus.stream().mapToLong(CudaDevice::uploadsSkipped).sum();
                long evictionsBefore = memoryState(runtime).evictions();
                JobResult result = runtime.client().submit(JobId.random(), g, perKernel, outs).toCompletableFuture()
                        .orTimeout(60, TimeUnit.SECONDS).join();
                for (int i = 0; i < outs.length; i++) {
                    assertClose("output " + i + " (seed " + seed + ", small budget " + smallBudget + ")",
                            result.floats(i), ref.floats(outs[i]));
                }
                assertThat(result.stats().segments()).hasSizeGreaterThan(3).extracting(JobStats.SegmentStat::ranOn)
                        .allMatch(w -> w.startsWith("resident-e2e/cuda-"));
                long skipped = gpus.stream().mapToLong(CudaDevice::uploadsSkipped).sum() - skippedBefore;
                long evictions = memoryState(runtime).evictions() - evictionsBefore;
                System.out.printf("small budget %s: %d uploads skipped, %d manager evictions, %s%n", smallBudget,
                        skipped, evictions, gpus.stream().map(d -> d.residency().toString()).toList());
                assertThat(skipped).as("segment inputs read from kept device copies").isPositive();
                if (smallBudget) {
                    assertThat(evictions).as("the manager evicted kept GPU copies").isPositive();
                }
                eventually(() -> {
                    for (CudaDevice gpu : gpus) {
                        assertThat(gpu.residency().size()).as("kept copies after the job").isZero();
                        assertThat(gpu.allocatedBytes()).as("device memory after the job: the scratch area only")
                                .isEqualTo(gpu.scratchBytes());
                    }
                });
            }
        }
    }
}
