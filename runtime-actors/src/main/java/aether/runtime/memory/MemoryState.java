package aether.runtime.memory;

import aether.runtime.protocol.CborSerializable;
import aether.runtime.protocol.Location;
import java.util.List;

/**
 * A snapshot of the memory manager for metrics: one entry per location with a budget, and counters since start.
 * Counters only grow, so a metrics exporter can report them as Prometheus counters and the per-location figures as
 * gauges.
 *
 * @param hits   uses (touch, allocation of a known buffer) that found a current copy at the requested location
 * @param misses uses that did not
 * @param droppedHints prefetch hints not acted on (unknown buffer, or no free room without evicting)
 * @param refusedRequests requests answered with a failure (invalid or over budget)
 */
public record MemoryState(
        List<LocationState> locations,
        int bufferCount,
        long evictions,
        long hits,
        long misses,
        long prefetches,
        long droppedHints,
        long invalidations,
        long refusedRequests) implements CborSerializable {

    public MemoryState {
        locations = List.copyOf(locations);
    }

    /** The entry for {@code location}, or null when it has no budget. */
    public LocationState location(Location location) {
        for (LocationState state : locations) {
            if (state.location().equals(location)) {
                return state;
            }
        }
        return null;
    }

    /**
     * One location's usage.
     *
     * @param bufferCount buffers with a current copy there
     */
    public record LocationState(Location location, long budgetBytes, long usedBytes, long pinnedBytes, int bufferCount) {}
}
