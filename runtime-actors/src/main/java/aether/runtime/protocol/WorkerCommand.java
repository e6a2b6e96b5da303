package aether.runtime.protocol;

import java.util.List;
import java.util.Objects;
import org.apache.pekko.actor.typed.ActorRef;

/** What a scheduler (on any node) sends a device worker. Workers register under {@link ServiceKeys#WORKERS}. */
public sealed interface WorkerCommand extends WorkerMessage, CborSerializable {

    /**
     * Runs {@code segment} on the worker's device. {@code inputs} bind the segment's input nodes in order; the outputs
     * go into new buffers named {@code outputIds} (version 0) on the worker's node, kept until {@link ReleaseTensors}.
     * Exactly one {@link SegmentEvent} answers, unless the segment is cancelled first.
     */
    record RunSegment(JobId jobId, SegmentSpec segment, List<TensorRef> inputs, List<BufferId> outputIds,
            ActorRef<SegmentEvent> replyTo) implements WorkerCommand {
        public RunSegment {
            Objects.requireNonNull(jobId, "jobId");
            Objects.requireNonNull(segment, "segment");
            inputs = List.copyOf(inputs);
            outputIds = List.copyOf(outputIds);
            Objects.requireNonNull(replyTo, "replyTo");
            if (inputs.size() != segment.inputNodes().size()) {
                throw new IllegalArgumentException(jobId + " segment " + segment.index() + ": " + inputs.size()
                        + " inputs for " + segment.inputNodes().size() + " input nodes");
            }
            if (outputIds.size() != segment.graph().outputs().size()) {
                throw new IllegalArgumentException(jobId + " segment " + segment.index() + ": " + outputIds.size()
                        + " output ids for " + segment.graph().outputs().size() + " outputs");
            }
        }
    }

    /** Stops the segment if it has not started and drops its result if it has: no {@link SegmentEvent} follows. */
    record CancelSegment(JobId jobId, int segment) implements WorkerCommand {}

    /** The buffers are no longer needed by anyone: the worker frees them. Unknown ids are ignored. */
    record ReleaseTensors(List<BufferId> ids) implements WorkerCommand {
        public ReleaseTensors {
            ids = List.copyOf(ids);
        }
    }

    /** Answers {@link WorkerDescribed} with the worker's capabilities. */
    record DescribeWorker(ActorRef<WorkerDescribed> replyTo) implements WorkerCommand {}
}
