package aether.runtime.protocol;

import aether.runtime.ir.OpGraph;
import java.util.List;
import java.util.Objects;
import org.apache.pekko.actor.typed.ActorRef;

/** What clients (local or on another node) send a scheduler. Found through {@link ServiceKeys#SCHEDULERS}. */
public sealed interface JobCommand extends SchedulerMessage, CborSerializable {

    /**
     * Runs {@code graph}: every {@code Input} node is bound by exactly one of {@code inputs}; {@code graph.outputs()}
     * come back, in order, in a {@link JobReply.JobCompleted}. Exactly one {@link JobReply} answers.
     */
    record SubmitJob(JobId jobId, OpGraph graph, List<JobInput> inputs, JobOptions options,
            ActorRef<JobReply> replyTo) implements JobCommand {
        public SubmitJob {
            Objects.requireNonNull(jobId, "jobId");
            Objects.requireNonNull(graph, "graph");
            inputs = List.copyOf(inputs);
            Objects.requireNonNull(options, "options");
            Objects.requireNonNull(replyTo, "replyTo");
        }
    }

    /**
     * Stops the job: queued segments are dropped, running ones asked to stop, and the submitter gets
     * {@link JobReply.JobCancelled}. Unknown or finished jobs are ignored.
     */
    record CancelJob(JobId jobId, String reason) implements JobCommand {}

    /**
     * The client took the outputs its {@link JobReply.JobCompleted} sent by reference ({@link TensorPayload.Stored}:
     * large outputs for a client on another node, whose bytes it pulls over the tensor exchange); the scheduler frees
     * them. Outputs never released are freed after the scheduler's retention time. Unknown jobs are ignored.
     */
    record ReleaseOutputs(JobId jobId) implements JobCommand {}

    /** Answers a {@link SchedulerState} snapshot (workers, queues, jobs) for metrics and tests. */
    record GetSchedulerState(ActorRef<SchedulerState> replyTo) implements JobCommand {}
}
