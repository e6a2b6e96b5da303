package aether.cluster;

import static aether.cluster.ClusterSupport.ask;
import static aether.cluster.ClusterSupport.hostPort;
import static org.assertj.core.api.Assertions.assertThat;

import aether.cluster.node.AetherNode;
import aether.runtime.memory.MemoryManager;
import aether.runtime.memory.MemoryState;
import aether.runtime.ir.Shape;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.JobReply;
import aether.runtime.protocol.ServiceKeys;
import aether.runtime.protocol.SchedulerState;
import aether.runtime.exchange.TensorDescriptor;
import aether.runtime.tensor.GgmlType;
import aether.runtime.transfer.TensorService;
import aether.runtime.transfer.TensorService.PullReply;
import aether.runtime.transfer.Transport;
import aether.scheduler.client.JobFailedException;
import aether.scheduler.client.JobResult;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A job submitted on node A (this JVM, a scheduler and no workers) runs on node B's CPU worker (a child JVM started
 * with {@code aether node}): inputs travel A→B and results B→A over Aeron, and the outputs equal the reference
 * executor's element for element. Killing B mid-job fails the job with an error that names B, in bounded time, and
 * the split-brain resolver removes B.
 */
@Timeout(120)
class ClusterComputeTest {

    AetherNode local;
    NodeProcess remote;

    @AfterEach
    void tearDown() throws Exception {
        try {
            if (local != null) {
                local.close();
            }
        } finally {
            if (remote != null) {
                remote.close();
            }
        }
    }

    private void startPair(String transport) throws Exception {
        local = ClusterSupport.startLocal(Map.of("aether.exchange.transport", transport, "aether.node.cpu-workers", 0));
        remote = NodeProcess.start(ClusterSupport.testFlags(), "--port", "0", "--seed", hostPort(local.nodeId()),
                "--transport", transport, "--cpu-threads", "1");
        String remoteId = remote.awaitReady(Duration.ofSeconds(60));
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {     // until A's scheduler knows B's worker
            SchedulerState state = ask(local, local.scheduler(),
                    (ActorRef<SchedulerState> r) -> new JobCommand.GetSchedulerState(r), Duration.ofSeconds(5));
            if (state.workers().stream().anyMatch(w -> w.capabilities().nodeId().equals(remoteId))) {
                return;
            }
            assertThat(System.nanoTime()).as("B's worker known to A's scheduler within 30 s").isLessThan(deadline);
            Thread.sleep(50);
        }
    }

    /** Asks {@code query} until {@code done} holds or {@code limit} passes; the last answer either way. */
    static <T> T awaitState(java.util.concurrent.Callable<T> query, java.util.function.Predicate<T> done,
            Duration limit) throws Exception {
        long deadline = System.nanoTime() + limit.toNanos();
        T state = query.call();
        while (!done.test(state) && System.nanoTime() < deadline) {
            Thread.sleep(50);
            state = query.call();
        }
        return state;
    }

    private static float[] random(SplittableRandom random, int n) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return values;
    }

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"AUTO", "UDP"})
    void shouldRunTheSegmentOnTheOtherJvmsWorkerAndMatchTheReference(Transport transport) throws Exception {
        startPair(transport.name().toLowerCase());
        SplittableRandom random = new SplittableRandom(20261122);
        Graph g = new Graph();
        Tensor x = g.tensor(random(random, 96 * 512), Shape.of(96, 512));       // 192 KiB
        Tensor w1 = g.tensor(random(random, 512 * 384), Shape.of(512, 384));    // 768 KiB: many Aeron frames
        Tensor w2 = g.tensor(random(random, 384 * 40), Shape.of(384, 40));
        Tensor y = x.matmul(w1).relu().matmul(w2).softmax(-1);

        JobResult result = local.client().submit(g, y).toCompletableFuture().get(60, TimeUnit.SECONDS);

        assertThat(result.floats(0)).as("output vs the reference executor in this JVM")
                .containsExactly(g.evaluate(new ReferenceExecutor(), y).floats(y));
        assertThat(result.stats().segments()).isNotEmpty().allSatisfy(s ->
                assertThat(s.ranOn()).as("worker of segment %d", s.segment()).startsWith(remote.nodeId() + "/"));
        TensorService.TransferStats stats = ask(local, local.tensorService(),
                (ActorRef<TensorService.TransferStats> r) -> new TensorService.GetStats(r), Duration.ofSeconds(5));
        long inputBytes = 4L * (96 * 512 + 512 * 384 + 384 * 40);
        if (transport == Transport.UDP) {
            assertThat(stats.bytesOutUdp()).as("inputs sent to B over UDP").isEqualTo(inputBytes);
            assertThat(stats.bytesInUdp()).as("the result pulled from B over UDP").isEqualTo(96 * 40 * 4);
            assertThat(stats.bytesOutIpc() + stats.bytesInIpc()).isZero();
        } else {
            assertThat(stats.bytesOutIpc()).as("inputs sent to B over IPC").isEqualTo(inputBytes);
            assertThat(stats.bytesInIpc()).as("the result pulled from B over IPC").isEqualTo(96 * 40 * 4);
            assertThat(stats.bytesOutUdp() + stats.bytesInUdp()).isZero();
        }
    }

    @Test
    void shouldMoveLargeInputsAndOutputsOfAJobOnTheOtherNodesSchedulerOverAeron() throws Exception {
        startPair("auto");
        ActorRef<JobCommand> schedulerOnB = ClusterSupport.awaitService(local, ServiceKeys.SCHEDULERS,
                remote.nodeId(), Duration.ofSeconds(30));
        SplittableRandom random = new SplittableRandom(4);
        Graph g = new Graph();
        Tensor x = g.tensor(random(random, 512 * 1024), Shape.of(512, 1024));     // 2 MiB: 8 Artery frames' worth
        Tensor w = g.tensor(random(random, 1024 * 256), Shape.of(1024, 256));    // 1 MiB
        Tensor y = x.matmul(w).tanh();                                             // 512 KiB back
        Tensor total = y.sumAll();                                                 // small: inline

        JobResult result = local.client(schedulerOnB).submit(g, y, total).toCompletableFuture()
                .get(90, TimeUnit.SECONDS);

        var reference = g.evaluate(new ReferenceExecutor(), y, total);
        float[] expected = reference.floats(y);
        assertThat(crc32c(result.floats(0))).as("CRC32C of the 512 KiB output pulled from B")
                .isEqualTo(crc32c(expected));
        assertThat(result.floats(0)).containsExactly(expected);
        assertThat(result.floats(1)[0]).isCloseTo(reference.floats(total)[0], org.assertj.core.data.Offset.offset(
                1e-2f * Math.max(1f, Math.abs(reference.floats(total)[0]))));
        assertThat(result.stats().segments()).allSatisfy(s -> assertThat(s.ranOn()).startsWith(remote.nodeId() + "/"));
        TensorService.TransferStats stats = ask(local, local.tensorService(),
                (ActorRef<TensorService.TransferStats> r) -> new TensorService.GetStats(r), Duration.ofSeconds(5));
        assertThat(stats.bytesOutIpc()).as("inputs B pulled from A's store over Aeron")
                .isEqualTo(4L * (512 * 1024 + 1024 * 256));
        assertThat(stats.bytesInIpc()).as("the large output A pulled from B over Aeron").isEqualTo(4L * 512 * 256);
        assertThat(local.workerStore().size()).as("inputs released once the job was answered").isZero();
        SchedulerState onB = awaitState(() -> ask(local, schedulerOnB,
                (ActorRef<SchedulerState> r) -> new JobCommand.GetSchedulerState(r), Duration.ofSeconds(5)),
                st -> st.jobsCompleted() == 1 && st.runningJobs().isEmpty(), Duration.ofSeconds(10));
        assertThat(onB.jobsCompleted()).isEqualTo(1);
        assertThat(onB.runningJobs()).isEmpty();
    }

    private static int crc32c(float[] values) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(values.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(values);
        crc.update(bytes);
        return (int) crc.getValue();
    }

    @Test
    void shouldFailTheJobNamingTheNodeWhenItsWorkerProcessIsKilledMidJob() throws Exception {
        startPair("auto");
        SplittableRandom random = new SplittableRandom(7);
        Graph g = new Graph();
        Tensor x = g.tensor(random(random, 512 * 512), Shape.of(512, 512));
        Tensor y = x;
        for (int i = 0; i < 40; i++) {      // a chain of segments: seconds of work for one thread on B
            y = y.matmul(x).tanh();
        }
        CompletableFuture<JobResult> job = local.client().submit(JobId.random(), g,
                JobOptions.DEFAULT.withGranularity(JobOptions.Granularity.FUSION_GROUP), y).toCompletableFuture();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (ask(local, local.scheduler(), (ActorRef<SchedulerState> r) -> new JobCommand.GetSchedulerState(r),
                Duration.ofSeconds(5)).segmentsDispatched() < 2) {
            assertThat(job).as("the job is still running when B is killed").isNotDone();
            assertThat(System.nanoTime()).isLessThan(deadline);
            Thread.sleep(10);
        }
        remote.kill();
        long killed = System.nanoTime();

        Throwable failure = null;
        try {
            job.get(45, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            failure = e.getCause() instanceof CompletionException c ? c.getCause() : e.getCause();
        }
        assertThat(failure).isInstanceOf(JobFailedException.class);
        JobReply.JobFailed failed = ((JobFailedException) failure).failure();
        assertThat(failed.reason()).isEqualTo(JobReply.JobFailed.Reason.WORKER_LOST);
        assertThat(failed.message()).as("the failure names the lost node").contains(remote.nodeId());
        assertThat(failed.message()).as("and the tensors that were only there").containsPattern("buffer#-?\\d+ f32");
        Duration took = Duration.ofNanos(System.nanoTime() - killed);
        assertThat(took).isLessThan(Duration.ofSeconds(30));
        assertThat(ClusterSupport.awaitMembers(local, 1, Duration.ofSeconds(30)))
                .as("members once the split-brain resolver downed B").isEqualTo(1);

        // nothing of the job is left behind: A's memory manager holds no registration, pin or tracked buffer of it
        // (the scheduler's abort or the manager's own watch on B's worker, whichever came first, released them), the
        // scheduler forgot the job and B's worker, and A's tensor store is empty
        MemoryState memory = awaitState(() -> ask(local, local.memory(),
                (ActorRef<MemoryState> r) -> new MemoryManager.GetState(r), Duration.ofSeconds(5)),
                m -> m.bufferCount() == 0 && m.heldBuffers() == 0 && m.pinnedBytes() == 0, Duration.ofSeconds(30));
        assertThat(memory.bufferCount()).as("registrations left in A's memory manager").isZero();
        assertThat(memory.pinnedBytes()).as("bytes still pinned for B's dead worker").isZero();
        assertThat(memory.heldBuffers()).as("buffers still tracked on B").isZero();
        assertThat(memory.location(aether.runtime.protocol.Location.HOST).usedBytes()).isZero();
        SchedulerState scheduler = awaitState(() -> ask(local, local.scheduler(),
                (ActorRef<SchedulerState> r) -> new JobCommand.GetSchedulerState(r), Duration.ofSeconds(5)),
                s -> s.runningJobs().isEmpty() && s.workers().isEmpty(), Duration.ofSeconds(30));
        assertThat(scheduler.runningJobs()).as("jobs A's scheduler still tracks").isEmpty();
        assertThat(scheduler.workers()).as("workers A's scheduler still lists").isEmpty();
        assertThat(scheduler.jobsFailed()).isEqualTo(1);
        assertThat(local.workerStore().size()).as("tensors left in A's store").isZero();

        // a tensor on the dead node cannot be pulled either: the failure names the node, nothing waits forever
        var onB = TensorDescriptor.of(1, 0, GgmlType.F32, List.of(512L, 512L), TensorDescriptor.Location.local(remote.nodeId()));
        long asked = System.nanoTime();
        PullReply reply = ask(local, local.tensorService(), (ActorRef<PullReply> r) -> new TensorService.Pull(onB, r),
                Duration.ofSeconds(30));
        assertThat(Duration.ofNanos(System.nanoTime() - asked)).as("a node known to be gone fails at once")
                .isLessThan(Duration.ofSeconds(2));
        assertThat(reply).isInstanceOfSatisfying(TensorService.PullFailed.class, f -> {
            assertThat(f.nodeId()).isEqualTo(remote.nodeId());
            assertThat(f.reason()).contains("node " + remote.nodeId() + " is not reachable");
        });
    }
}
