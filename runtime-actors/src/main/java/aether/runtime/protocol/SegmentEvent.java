package aether.runtime.protocol;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.util.List;

/** A worker's answer to {@link WorkerCommand.RunSegment}. */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "kind")
@JsonSubTypes({
    @JsonSubTypes.Type(value = SegmentEvent.SegmentCompleted.class, name = "completed"),
    @JsonSubTypes.Type(value = SegmentEvent.SegmentFailed.class, name = "failed")
})
public sealed interface SegmentEvent extends SchedulerMessage, CborSerializable {

    JobId jobId();

    int segment();

    String worker();

    /** The segment's outputs, in order, now held by the worker's node; {@code runNanos} is the device time. */
    record SegmentCompleted(JobId jobId, int segment, String worker, List<TensorRef> outputs, long runNanos)
            implements SegmentEvent {
        public SegmentCompleted {
            outputs = List.copyOf(outputs);
        }
    }

    /**
     * The segment did not run to the end. {@code node} is the failing node of the segment's graph (-1 when the failure
     * is not one node's, e.g. a missing input or out of device memory) and {@code op} its op name.
     */
    record SegmentFailed(JobId jobId, int segment, String worker, int node, String op, String message)
            implements SegmentEvent {}
}
