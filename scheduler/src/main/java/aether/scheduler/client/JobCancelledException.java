package aether.scheduler.client;

import aether.runtime.protocol.JobId;
import java.util.concurrent.CancellationException;

/** The job's stage fails with this when the job was cancelled before it finished. */
public final class JobCancelledException extends CancellationException {
    private final transient JobId jobId;

    public JobCancelledException(JobId jobId, String reason) {
        super(jobId + " cancelled: " + reason);
        this.jobId = jobId;
    }

    public JobId jobId() {
        return jobId;
    }
}
