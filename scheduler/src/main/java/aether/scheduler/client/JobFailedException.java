package aether.scheduler.client;

import aether.runtime.protocol.JobReply;

/** The job's stage fails with this when the scheduler answers {@link JobReply.JobFailed}: it carries the reply. */
public final class JobFailedException extends RuntimeException {
    private final JobReply.JobFailed failure;

    public JobFailedException(JobReply.JobFailed failure) {
        super(failure.jobId() + " failed (" + failure.reason() + "): " + failure.message());
        this.failure = failure;
    }

    public JobReply.JobFailed failure() {
        return failure;
    }
}
