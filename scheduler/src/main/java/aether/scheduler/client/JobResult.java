package aether.scheduler.client;

import aether.runtime.ir.TensorType;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.JobReply;
import aether.runtime.protocol.JobStats;
import aether.runtime.protocol.TensorPayload;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.StorageFormat;
import java.lang.foreign.MemorySegment;
import java.util.List;

/** A finished job: its outputs in the order they were asked for, and how it ran. Immutable. */
public final class JobResult {

    private final JobReply.JobCompleted reply;

    JobResult(JobReply.JobCompleted reply) {
        this.reply = reply;
    }

    public JobId jobId() {
        return reply.jobId();
    }

    public int outputCount() {
        return reply.outputs().size();
    }

    public TensorType type(int output) {
        return reply.outputs().get(output).type();
    }

    /** Output {@code i} as a host tensor (its exact values). */
    public HostTensor value(int output) {
        TensorPayload.Inline inline = inline(output);
        return (HostTensor) StorageFormat.decode(MemorySegment.ofArray(inline.bytes()), inline.type());
    }

    /** Output {@code i} as floats (any floating or integer dtype, converted). */
    public float[] floats(int output) {
        return value(output).toFloatArray();
    }

    /** The outputs as the scheduler sent them. */
    public List<TensorPayload> payloads() {
        return reply.outputs();
    }

    public JobStats stats() {
        return reply.stats();
    }

    private TensorPayload.Inline inline(int output) {
        if (reply.outputs().get(output) instanceof TensorPayload.Inline inline) {
            return inline;
        }
        throw new IllegalStateException("output " + output + " is not inline: " + reply.outputs().get(output));
    }

    @Override
    public String toString() {
        return "JobResult[" + reply.jobId() + ", " + reply.outputs() + "]";
    }
}
