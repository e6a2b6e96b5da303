package aether.scheduler.client;

import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.JobInput;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.JobReply;
import aether.runtime.protocol.TensorPayload;
import aether.scheduler.compile.Program;
import aether.scheduler.exec.StorageFormat;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * Submits compute jobs to a scheduler with the same messages a client on another node sends
 * ({@link JobCommand.SubmitJob}, answered by one {@link JobReply}); input values travel inline in the message. The
 * stage completes with a {@link JobResult}, or fails with {@link JobFailedException} (the scheduler's failure, naming
 * the segment and op), {@link JobCancelledException}, or a {@link TimeoutException} when no answer came within the
 * client's timeout (the job is then cancelled). Thread-safe; never blocks.
 */
public final class ComputeClient {

    /** Time a job without a deadline may take before the client gives up on it. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(5);

    private final ActorSystem<?> system;
    private final ActorRef<JobCommand> scheduler;
    private final Duration timeout;

    public ComputeClient(ActorSystem<?> system, ActorRef<JobCommand> scheduler) {
        this(system, scheduler, DEFAULT_TIMEOUT);
    }

    /** @param timeout how long to wait for a job without a deadline (one with a deadline: the deadline + 10 s) */
    public ComputeClient(ActorSystem<?> system, ActorRef<JobCommand> scheduler, Duration timeout) {
        this.system = Objects.requireNonNull(system, "system");
        this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
        this.timeout = Objects.requireNonNull(timeout, "timeout");
    }

    /** Computes {@code outputs} of {@code graph} with the values currently bound to its leaves. */
    public CompletionStage<JobResult> submit(Graph graph, Tensor... outputs) {
        return submit(JobId.random(), graph, JobOptions.DEFAULT, outputs);
    }

    /** As {@link #submit(Graph, Tensor...)} with the job's id (for {@link #cancel}) and options. */
    public CompletionStage<JobResult> submit(JobId jobId, Graph graph, JobOptions options, Tensor... outputs) {
        Program.Snapshot snapshot;
        List<JobInput> inputs = new ArrayList<>();
        try {
            snapshot = Program.from(graph, List.of(), outputs);
            int[] mapping = snapshot.mapping();
            for (int old = 0; old < mapping.length; old++) {
                if (mapping[old] >= 0 && graph.node(old).op() instanceof Op.Input input) {
                    TensorValue value = graph.value(graph.tensor(old));
                    if (value == null) {
                        throw new IllegalArgumentException("input %" + old + " '" + input.label() + "' "
                                + input.type() + " has no value: bind it with Graph.set before submitting");
                    }
                    inputs.add(new JobInput(mapping[old], new TensorPayload.Inline(value.type(),
                            StorageFormat.bytes(value))));
                }
            }
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return submit(jobId, snapshot.program().graph(), inputs, options);
    }

    /** Runs {@code graph} with {@code inputs} bound to its input nodes; outputs are {@code graph.outputs()}. */
    public CompletionStage<JobResult> submit(JobId jobId, OpGraph graph, List<JobInput> inputs, JobOptions options) {
        Duration wait = options.deadlineMillis() > 0
                ? Duration.ofMillis(options.deadlineMillis()).plusSeconds(10) : timeout;
        CompletionStage<JobReply> reply = AskPattern.ask(scheduler,
                replyTo -> new JobCommand.SubmitJob(jobId, graph, inputs, options, replyTo), wait, system.scheduler());
        return reply.handle((answer, error) -> {
            if (error != null) {
                scheduler.tell(new JobCommand.CancelJob(jobId, "client gave up after " + wait));
                TimeoutException t = new TimeoutException(jobId + ": no answer within " + wait);
                t.initCause(error);
                throw new java.util.concurrent.CompletionException(t);
            }
            return switch (answer) {
                case JobReply.JobCompleted done -> new JobResult(done);
                case JobReply.JobFailed failed -> throw new JobFailedException(failed);
                case JobReply.JobCancelled cancelled -> throw new JobCancelledException(cancelled.jobId(),
                        cancelled.reason());
            };
        });
    }

    /** Asks the scheduler to stop the job; its stage then fails with {@link JobCancelledException}. */
    public void cancel(JobId jobId, String reason) {
        scheduler.tell(new JobCommand.CancelJob(jobId, reason));
    }
}
