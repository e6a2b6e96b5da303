package aether.scheduler.actor;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.worker.TensorFetcher;
import aether.device.worker.TensorStore;
import aether.runtime.ir.Shape;
import aether.runtime.protocol.DeviceKind;
import aether.runtime.protocol.JobReply.JobFailed.Reason;
import aether.runtime.protocol.SegmentEvent;
import aether.runtime.protocol.ServiceKeys;
import aether.runtime.protocol.TensorRef;
import aether.runtime.protocol.WorkerCapabilities;
import aether.runtime.protocol.WorkerCommand;
import aether.runtime.protocol.WorkerDescribed;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.client.ComputeRuntime;
import aether.scheduler.client.JobFailedException;
import aether.scheduler.client.JobResult;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The scheduler against a worker that is only the protocol (a probe playing a GPU worker): it is found through the
 * Receptionist, described, sent the segment (its inputs announced to the memory manager as prefetch hints), and its
 * wrong answer fails the job instead of the scheduler.
 */
@Timeout(30)
class ForeignWorkerTest {
    static final ActorTestKit kit = ActorTestKit.create("ForeignWorkerTest", StrictPekko.config());

    @AfterAll
    static void shutdown() {
        kit.shutdownTestKit();
    }

    @Test
    void shouldFailTheJobWhenAWorkerAnswersWithOutputsTheSegmentDoesNotHave() {
        TestProbe<WorkerCommand> worker = kit.createTestProbe();
        kit.system().receptionist().tell(Receptionist.register(ServiceKeys.WORKERS, worker.ref()));
        TensorStore store = new TensorStore("here");
        try (ComputeRuntime runtime = ComputeRuntime.start(kit.system(), new ComputeRuntime.Settings("here", 0, 1,
                1 << 20, 1 << 20), List.of(), store, TensorFetcher.localOnly("here"), true)) {
            var describe = worker.expectMessageClass(WorkerCommand.DescribeWorker.class);
            describe.replyTo().tell(new WorkerDescribed(worker.ref(), new WorkerCapabilities("here/cuda-1", "here",
                    DeviceKind.CUDA, 1, 1 << 20, 1, WorkerCapabilities.allOpKinds(), Set.of(GgmlType.F32), Set.of())));

            runtime.memoryManager().tell(new aether.runtime.memory.MemoryManager.SetBudget(
                    aether.runtime.protocol.Location.device(1), 1 << 20));
            Graph g = new Graph();
            Tensor x = g.tensor(new float[] {1, 2, 3, 4}, Shape.of(2, 2));
            CompletableFuture<JobResult> stage = runtime.client().submit(g, x.softmax(-1)).toCompletableFuture();
            var run = worker.expectMessageClass(WorkerCommand.RunSegment.class);
            TensorRef input = run.inputs().getFirst();
            assertThat(input.nodeId()).isEqualTo("here");
            assertThat(store.get(input)).as("the input waits in the scheduler node's store").isNotNull();
            TestProbe<aether.runtime.memory.MemoryState> memory = kit.createTestProbe();
            memory.awaitAssert(() -> {   // a GPU worker's inputs are announced to the memory manager ahead of use
                runtime.memoryManager().tell(new aether.runtime.memory.MemoryManager.GetState(memory.ref()));
                assertThat(memory.receiveMessage().prefetches()).isEqualTo(1);
                return null;
            });
            run.replyTo().tell(new SegmentEvent.SegmentCompleted(run.jobId(), run.segment().index(), "here/cuda-1",
                    List.of(), 1));

            Throwable error = null;
            try {
                stage.orTimeout(10, TimeUnit.SECONDS).join();
            } catch (CompletionException e) {
                error = e.getCause();
            }
            assertThat(error).isInstanceOf(JobFailedException.class);
            var failure = ((JobFailedException) error).failure();
            assertThat(failure.reason()).isEqualTo(Reason.SEGMENT_FAILED);
            assertThat(failure.worker()).isEqualTo("here/cuda-1");
            assertThat(failure.message()).contains("the worker returned 0 outputs (expected: 1)");
            assertThat(worker.expectMessageClass(WorkerCommand.ReleaseTensors.class).ids()).isEmpty();
            worker.awaitAssert(() -> {   // freed right after the reply went out
                assertThat(store.size()).as("the job's input is freed").isZero();
                return null;
            });
        }
    }
}
