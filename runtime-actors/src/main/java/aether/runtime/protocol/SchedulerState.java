package aether.runtime.protocol;

import java.util.List;

/**
 * A scheduler's snapshot: its known workers with their queues, and its running jobs. Counters only grow.
 *
 * @param jobsCompleted jobs answered with {@link JobReply.JobCompleted}
 * @param jobsFailed    jobs answered with {@link JobReply.JobFailed}
 * @param jobsCancelled jobs answered with {@link JobReply.JobCancelled}
 * @param segmentsStolen segments taken from another worker's queue
 */
public record SchedulerState(List<WorkerState> workers, List<JobId> runningJobs, long jobsCompleted, long jobsFailed,
        long jobsCancelled, long segmentsDispatched, long segmentsStolen) implements CborSerializable {
    public SchedulerState {
        workers = List.copyOf(workers);
        runningJobs = List.copyOf(runningJobs);
    }

    /** One worker: its capabilities, segments waiting in its queue and segments running on it. */
    public record WorkerState(WorkerCapabilities capabilities, int queued, int running, long completed) {}
}
