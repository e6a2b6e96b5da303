package aether.runtime.protocol;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.util.List;

/** The one answer a {@link JobCommand.SubmitJob} gets. */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "kind")
@JsonSubTypes({
    @JsonSubTypes.Type(value = JobReply.JobCompleted.class, name = "completed"),
    @JsonSubTypes.Type(value = JobReply.JobFailed.class, name = "failed"),
    @JsonSubTypes.Type(value = JobReply.JobCancelled.class, name = "cancelled")
})
public sealed interface JobReply extends CborSerializable {

    JobId jobId();

    /**
     * The graph's outputs, in order, and how the job ran. Outputs are {@link TensorPayload.Inline}, except that a client
     * on another node than the scheduler gets outputs over the inline limit as {@link TensorPayload.Stored} references
     * (actor messages carry descriptors, bytes move over the tensor exchange) and answers
     * {@link JobCommand.ReleaseOutputs} once it has them.
     */
    record JobCompleted(JobId jobId, List<TensorPayload> outputs, JobStats stats) implements JobReply {
        public JobCompleted {
            outputs = List.copyOf(outputs);
        }
    }

    /**
     * The job did not finish. {@code segment}, {@code node} and {@code op} name where it failed when a segment failed
     * ({@code node} is the id in the submitted graph, or -1 when the failure is not one node's), {@code worker} the
     * worker it ran on; {@code reason} says why in words.
     */
    record JobFailed(JobId jobId, Reason reason, int segment, int node, String op, String worker, String message)
            implements JobReply {

        /** What kind of failure ended the job. */
        public enum Reason {
            /** The job itself is invalid (unbound input, wrong type, unsupported op everywhere). */
            INVALID_JOB,
            /** An op failed while running (e.g. an index out of range). */
            SEGMENT_FAILED,
            /** The job's deadline passed. */
            DEADLINE_EXCEEDED,
            /** The worker running a segment died or left, and no retry was allowed or possible. */
            WORKER_LOST,
            /** No registered worker can run a segment (capabilities or memory). */
            NO_WORKER
        }

        @Override
        public String toString() {
            return jobId + " failed (" + reason + "): " + message;
        }
    }

    /** The job was cancelled before it finished. */
    record JobCancelled(JobId jobId, String reason) implements JobReply {}
}
