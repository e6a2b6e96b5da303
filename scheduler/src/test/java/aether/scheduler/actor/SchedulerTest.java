package aether.scheduler.actor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.device.cpu.CpuDevice;
import aether.device.spi.Device;
import aether.device.spi.HostSegmentRunner;
import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.runtime.memory.MemoryManager;
import aether.runtime.memory.MemoryState;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.JobReply.JobFailed.Reason;
import aether.runtime.protocol.JobStats;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.SchedulerState;
import aether.scheduler.client.ComputeClient;
import aether.scheduler.client.ComputeRuntime;
import aether.scheduler.client.JobCancelledException;
import aether.scheduler.client.JobFailedException;
import aether.scheduler.client.JobResult;
import aether.scheduler.exec.HostSegmentExecutor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Evaluation;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The scheduler actor with real CPU workers, under serialize-messages, compared with the reference executor. */
@Timeout(60)
class SchedulerTest {
    static final ActorTestKit kit = ActorTestKit.create("SchedulerTest", StrictPekko.config());
    static final HostSegmentExecutor EXECUTOR = new HostSegmentExecutor();
    static final long SEED = System.nanoTime();

    @AfterAll
    static void shutdown() {
        kit.shutdownTestKit();
    }

    static ComputeRuntime runtime(String node, List<HostSegmentRunner> runners) {
        List<Device> devices = new ArrayList<>();
        for (int i = 0; i < runners.size(); i++) {
            devices.add(new CpuDevice(i, 1, 64L << 20, runners.get(i), HostSegmentExecutor.ops(),
                    HostSegmentExecutor.dtypes(), HostSegmentExecutor.quantTypes()));
        }
        ComputeRuntime runtime = ComputeRuntime.start(kit.system(), new ComputeRuntime.Settings(node, runners.size(),
                1, 64L << 20, 1L << 30), devices);
        awaitWorkers(runtime, runners.size());
        return runtime;
    }

    static void awaitWorkers(ComputeRuntime runtime, int n) {
        kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
            assertThat(state(runtime).workers()).hasSize(n);
            return null;
        });
    }

    static SchedulerState state(ComputeRuntime runtime) {
        TestProbe<SchedulerState> probe = kit.createTestProbe();
        runtime.scheduler().tell(new JobCommand.GetSchedulerState(probe.ref()));
        return probe.receiveMessage();
    }

    static MemoryState memory(ComputeRuntime runtime) {
        TestProbe<MemoryState> probe = kit.createTestProbe();
        runtime.memoryManager().tell(new MemoryManager.GetState(probe.ref()));
        return probe.receiveMessage();
    }

    /** The index of the one worker running a segment. */
    static int busyWorker(ComputeRuntime runtime) {
        List<SchedulerState.WorkerState> busy = state(runtime).workers().stream().filter(w -> w.running() > 0).toList();
        assertThat(busy).hasSize(1);
        String id = busy.getFirst().capabilities().workerId();
        return Integer.parseInt(id.substring(id.lastIndexOf('-') + 1));
    }

    static float[] random(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return v;
    }

    static JobResult await(CompletableFuture<JobResult> stage) {
        return stage.orTimeout(30, TimeUnit.SECONDS).join();
    }

    static Throwable failure(CompletableFuture<JobResult> stage) {
        try {
            stage.orTimeout(30, TimeUnit.SECONDS).join();
        } catch (CompletionException e) {
            return e.getCause();
        }
        throw new AssertionError("the job did not fail");
    }

    /** Outputs of the scheduler equal the reference executor's, element for element. */
    static void assertMatchesReference(JobResult result, Evaluation expected, Tensor... outputs) {
        for (int i = 0; i < outputs.length; i++) {
            assertThat(result.floats(i)).as("output %d (seed %d)", i, SEED)
                    .containsExactly(expected.floats(outputs[i]));
        }
    }

    @Test
    void shouldRunIndependentBranchesConcurrentlyOnTwoWorkersAndMatchTheReference() {
        // each of the first two segments waits for the other at a barrier: they pass only if they run at once
        CyclicBarrier both = new CyclicBarrier(2);
        java.util.concurrent.atomic.AtomicInteger started = new java.util.concurrent.atomic.AtomicInteger();
        HostSegmentRunner barrier = (segment, in, out) -> {
            if (started.incrementAndGet() <= 2) {
                try {
                    both.await(20, TimeUnit.SECONDS);
                } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
                    throw new IllegalStateException("branches did not run concurrently", e);
                }
            }
            EXECUTOR.run(segment, in, out);
        };
        try (ComputeRuntime runtime = runtime("branches", List.of(barrier, barrier))) {
            Random rnd = new Random(SEED);
            Graph g = new Graph();
            Tensor x = g.tensor(random(rnd, 4 * 16), Shape.of(4, 16));
            Tensor w1 = g.tensor(random(rnd, 16 * 16), Shape.of(16, 16));
            Tensor w2 = g.tensor(random(rnd, 16 * 8), Shape.of(16, 8));
            Tensor w3 = g.tensor(random(rnd, 16 * 16), Shape.of(16, 16));
            Tensor w4 = g.tensor(random(rnd, 16 * 8), Shape.of(16, 8));
            Tensor left = x.matmul(w1).relu().matmul(w2);
            Tensor right = x.matmul(w3).tanh().matmul(w4).softmax(-1);
            Tensor out = left.add(right).rmsNorm(1e-5);

            JobResult result = await(runtime.client().submit(g, out, left).toCompletableFuture());

            assertMatchesReference(result, g.evaluate(new ReferenceExecutor(), out, left), out, left);
            List<JobStats.SegmentStat> segments = result.stats().segments();
            assertThat(segments).hasSizeGreaterThanOrEqualTo(3);
            assertThat(segments.get(0).ranOn()).isNotEqualTo(segments.get(1).ranOn());
        }
    }

    @Test
    void shouldStopPendingSegmentsWhenAJobIsCancelled() throws Exception {
        GatedRunner gated = new GatedRunner(EXECUTOR, 0);
        try (ComputeRuntime runtime = runtime("cancel", List.of(gated))) {
            Graph g = new Graph();
            Tensor x = g.tensor(random(new Random(SEED), 64), Shape.of(8, 8));
            Tensor y = x.softmax(-1).matmul(x).softmax(-1).matmul(x).rmsNorm(1e-6);   // a chain of segments
            JobId id = JobId.random();
            CompletableFuture<JobResult> stage = runtime.client().submit(id, g,
                    JobOptions.DEFAULT.withGranularity(JobOptions.Granularity.FUSION_GROUP), y).toCompletableFuture();
            gated.awaitAtGate(1);

            runtime.client().cancel(id, "test cancels");

            assertThat(failure(stage)).isInstanceOf(JobCancelledException.class).hasMessageContaining("test cancels");
            gated.open();
            kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
                assertThat(gated.finished()).isEqualTo(1);
                assertThat(runtime.store().size()).as("buffers left in the store").isZero();
                return null;
            });
            SchedulerState s = state(runtime);
            assertThat(gated.runs()).as("segments started").isEqualTo(1);
            assertThat(s.segmentsDispatched()).isEqualTo(1);
            assertThat(s.workers().getFirst().queued()).isZero();
            assertThat(s.runningJobs()).isEmpty();
            assertThat(s.jobsCancelled()).isEqualTo(1);
        }
    }

    @Test
    void shouldFailAJobPastItsDeadlineWithAClearMessage() throws Exception {
        GatedRunner gated = new GatedRunner(EXECUTOR, 0);
        try (ComputeRuntime runtime = runtime("deadline", List.of(gated))) {
            Graph g = new Graph();
            Tensor x = g.tensor(random(new Random(SEED), 64), Shape.of(8, 8));
            Tensor y = x.matmul(x).softmax(-1).matmul(x);
            CompletableFuture<JobResult> stage = runtime.client().submit(JobId.random(), g,
                    JobOptions.DEFAULT.withDeadlineMillis(200), y).toCompletableFuture();

            Throwable error = failure(stage);
            gated.open();

            assertThat(error).isInstanceOf(JobFailedException.class);
            JobFailedException failed = (JobFailedException) error;
            assertThat(failed.failure().reason()).isEqualTo(Reason.DEADLINE_EXCEEDED);
            assertThat(failed.getMessage()).contains("deadline of 200 ms exceeded after")
                    .contains("running: segment 0 on deadline/cpu-0");
            kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
                assertThat(runtime.store().size()).isZero();
                return null;
            });
        }
    }

    @Test
    void shouldNameTheFailingSegmentAndOp() {
        try (ComputeRuntime runtime = runtime("failing", List.of(EXECUTOR))) {
            Graph g = new Graph();
            Tensor table = g.tensor(random(new Random(SEED), 12), Shape.of(4, 3));
            Tensor ids = g.indices(new int[] {1, 7}, Shape.of(2));
            Tensor rows = table.exp().getRows(ids);
            Tensor y = rows.mul(2.0).sumAll();

            Throwable error = failure(runtime.client().submit(g, y).toCompletableFuture());

            assertThat(error).isInstanceOf(JobFailedException.class);
            var failure = ((JobFailedException) error).failure();
            assertThat(failure.reason()).isEqualTo(Reason.SEGMENT_FAILED);
            assertThat(failure.op()).isEqualTo("get_rows");
            assertThat(failure.worker()).isEqualTo("failing/cpu-0");
            assertThat(failure.segment()).isGreaterThanOrEqualTo(0);
            // the node id is the submitted graph's: the one the client built with getRows
            aether.runtime.ir.OpGraph submitted = g.toOpGraph(y);
            assertThat(submitted.node(failure.node()).op()).isInstanceOf(aether.runtime.ir.Op.GetRows.class);
            assertThat(failure.message()).contains("segment " + failure.segment()).contains("get_rows")
                    .contains("7");
            assertThat(state(runtime).runningJobs()).isEmpty();
        }
    }

    @Test
    void shouldLetAnIdleWorkerStealQueuedSegments() throws Exception {
        // each worker runs its first segment freely; later ones wait at the gate until the test opens it
        GatedRunner a = new GatedRunner(EXECUTOR, 1);
        GatedRunner b = new GatedRunner(EXECUTOR, 1);
        try (ComputeRuntime runtime = runtime("steal", List.of(a, b))) {
            Random rnd = new Random(SEED);
            Graph g = new Graph();
            Tensor x = g.tensor(random(rnd, 4 * 8), Shape.of(4, 8));
            Tensor shared = x.matmul(g.tensor(random(rnd, 64), Shape.of(8, 8)));
            List<Tensor> outs = new ArrayList<>();
            for (Function<Tensor, Tensor> f : List.<Function<Tensor, Tensor>>of(Tensor::exp, Tensor::tanh,
                    Tensor::sigmoid)) {
                outs.add(f.apply(shared).matmul(g.tensor(random(rnd, 64), Shape.of(8, 8))));
            }
            Tensor[] outputs = outs.toArray(Tensor[]::new);
            CompletableFuture<JobResult> stage = runtime.client().submit(g, outputs).toCompletableFuture();

            kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
                assertThat(state(runtime).segmentsStolen()).isGreaterThanOrEqualTo(1);
                return null;
            });
            a.open();
            b.open();
            JobResult result = await(stage);

            assertMatchesReference(result, g.evaluate(new ReferenceExecutor(), outputs), outputs);
            assertThat(result.stats().stolen()).isGreaterThanOrEqualTo(1);
            assertThat(result.stats().segments()).anySatisfy(s -> assertThat(s.ranOn()).isNotEqualTo(s.placedOn()));
        }
    }

    @Test
    void shouldPinBuffersWhileTheirSegmentRunsAndFreeThemAfter() throws Exception {
        GatedRunner gated = new GatedRunner(EXECUTOR, 1);
        try (ComputeRuntime runtime = runtime("memory", List.of(gated))) {
            Graph g = new Graph();
            Tensor x = g.tensor(random(new Random(SEED), 16 * 32), Shape.of(16, 32));
            Tensor h = x.softmax(-1);                        // segment 0: runs freely
            Tensor y = h.matmulT(x).rmsNorm(1e-6);          // segment 1 reads h and x: held at the gate
            CompletableFuture<JobResult> stage = runtime.client().submit(JobId.random(), g,
                    JobOptions.DEFAULT.withGranularity(JobOptions.Granularity.FUSION_GROUP), y).toCompletableFuture();
            gated.awaitAtGate(1);

            long inputBytes = 2L * 16 * 32 * Float.BYTES;   // h and x, both pinned by the waiting segment
            kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
                MemoryState.LocationState host = memory(runtime).location(Location.HOST);
                assertThat(host.pinnedBytes()).isEqualTo(inputBytes);
                return null;
            });
            gated.open();
            JobResult result = await(stage);

            assertMatchesReference(result, g.evaluate(new ReferenceExecutor(), y), y);
            kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
                MemoryState state = memory(runtime);
                assertThat(state.location(Location.HOST).pinnedBytes()).isZero();
                assertThat(state.bufferCount()).as("buffers still registered").isZero();
                assertThat(runtime.store().size()).isZero();
                return null;
            });
        }
    }

    @Test
    void shouldRejectAJobWithAnUnboundInputNamingIt() {
        try (ComputeRuntime runtime = runtime("invalid", List.of(EXECUTOR))) {
            Graph g = new Graph();
            Tensor x = g.input("tokens", Shape.of(2, 2), DType.F32);
            Tensor y = x.exp();
            ComputeClient client = runtime.client();
            aether.runtime.ir.OpGraph graph = g.toOpGraph(y);

            Throwable error = failure(client.submit(JobId.random(), graph, List.of(), JobOptions.DEFAULT)
                    .toCompletableFuture());

            assertThat(error).isInstanceOf(JobFailedException.class).hasMessageContaining("'tokens'")
                    .hasMessageContaining("is not bound");
            assertThat(((JobFailedException) error).failure().reason()).isEqualTo(Reason.INVALID_JOB);
        }
    }

    @Test
    void shouldRetryASegmentWhoseWorkerStoppedOnAnotherWorker() throws Exception {
        GatedRunner first = new GatedRunner(EXECUTOR, 0, 1);   // the first run waits; the retry passes
        try (ComputeRuntime runtime = runtime("retry", List.of(first, first))) {
            Graph g = new Graph();
            Tensor x = g.tensor(random(new Random(SEED), 64), Shape.of(8, 8));
            Tensor y = x.matmul(x).softmax(-1).rmsNorm(1e-6);
            CompletableFuture<JobResult> stage = runtime.client().submit(JobId.random(), g,
                    JobOptions.DEFAULT.withMaxAttempts(2), y).toCompletableFuture();
            first.awaitAtGate(1);
            int busy = busyWorker(runtime);

            runtime.stopWorker(busy);
            JobResult result = await(stage);
            first.open();

            assertMatchesReference(result, g.evaluate(new ReferenceExecutor(), y), y);
            JobStats.SegmentStat s = result.stats().segments().getFirst();
            assertThat(s.attempts()).isEqualTo(2);
            assertThat(s.ranOn()).isEqualTo("retry/cpu-" + (1 - busy));
            assertThat(state(runtime).workers()).hasSize(1);
        }
    }

    @Test
    void shouldFailAJobWhoseWorkerStoppedWhenRetriesAreNotAllowed() throws Exception {
        GatedRunner only = new GatedRunner(EXECUTOR, 0);
        try (ComputeRuntime runtime = runtime("lost", List.of(only, only))) {
            Graph g = new Graph();
            Tensor x = g.tensor(random(new Random(SEED), 64), Shape.of(8, 8));
            Tensor y = x.matmul(x).softmax(-1);
            CompletableFuture<JobResult> stage = runtime.client().submit(g, y).toCompletableFuture();
            only.awaitAtGate(1);
            int busy = busyWorker(runtime);

            runtime.stopWorker(busy);
            Throwable error = failure(stage);
            only.open();

            assertThat(error).isInstanceOf(JobFailedException.class);
            var failure = ((JobFailedException) error).failure();
            assertThat(failure.reason()).isEqualTo(Reason.WORKER_LOST);
            assertThat(failure.worker()).isEqualTo("lost/cpu-" + busy);
            assertThat(failure.segment()).isZero();
            // the death watch and the Receptionist's listing race to tell the scheduler first; either names the worker
            assertThat(failure.message()).containsPattern("worker lost/cpu-" + busy
                            + " (stopped|left the worker listing) while running segment 0")
                    .contains("attempt 1 of 1");
            kit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
                assertThat(memory(runtime).bufferCount()).as("buffers still registered").isZero();
                return null;
            });
        }
    }
}
