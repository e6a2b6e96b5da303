package aether.runtime.protocol;

/**
 * How the scheduler runs one job.
 *
 * @param deadlineMillis   the job fails if not finished this long after the scheduler accepted it; 0 = no deadline
 * @param maxAttempts      how often a segment may be started when its worker dies (1 = never retried)
 * @param granularity      how fused kernels are grouped into dispatched segments
 * @param maxGroupsPerSegment with {@link Granularity#CHAIN}, the most fused kernels one segment holds (1+)
 */
public record JobOptions(long deadlineMillis, int maxAttempts, Granularity granularity, int maxGroupsPerSegment) {

    /** What one dispatched segment is. */
    public enum Granularity {
        /** Every fused kernel (fusion group) is its own segment: the finest the scheduler dispatches. */
        FUSION_GROUP,
        /** Chains of fused kernels with one producer and one consumer run as one segment; branches stay separate. */
        CHAIN
    }

    public static final JobOptions DEFAULT = new JobOptions(0, 1, Granularity.CHAIN, 64);

    public JobOptions {
        if (deadlineMillis < 0) {
            throw new IllegalArgumentException("deadlineMillis: " + deadlineMillis + " (expected: 0 for none, or 1+)");
        }
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("maxAttempts: " + maxAttempts + " (expected: 1+)");
        }
        if (granularity == null) {
            throw new IllegalArgumentException("granularity: null (expected: FUSION_GROUP or CHAIN)");
        }
        if (maxGroupsPerSegment < 1) {
            throw new IllegalArgumentException("maxGroupsPerSegment: " + maxGroupsPerSegment + " (expected: 1+)");
        }
    }

    public JobOptions withDeadlineMillis(long millis) {
        return new JobOptions(millis, maxAttempts, granularity, maxGroupsPerSegment);
    }

    public JobOptions withMaxAttempts(int attempts) {
        return new JobOptions(deadlineMillis, attempts, granularity, maxGroupsPerSegment);
    }

    public JobOptions withGranularity(Granularity g) {
        return new JobOptions(deadlineMillis, maxAttempts, g, maxGroupsPerSegment);
    }
}
