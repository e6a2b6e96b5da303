package aether.runtime.protocol;

import java.util.List;

/**
 * How a job ran.
 *
 * @param wallNanos time from acceptance to the last output
 * @param stolen    segments run by another worker than the one they were queued on
 * @param segments  one entry per segment, by segment index
 */
public record JobStats(long wallNanos, int stolen, List<SegmentStat> segments) {
    public JobStats {
        segments = List.copyOf(segments);
    }

    /**
     * One segment: the fused kernels it ran ({@code groups}), the job-graph nodes it computed, where it was queued and
     * where it ran, and its run time on the worker.
     */
    public record SegmentStat(int segment, int groups, int nodes, String placedOn, String ranOn, int attempts,
            long runNanos) {}
}
