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
 * @param heldBuffers buffers tracked on another node's worker ({@code MemoryManager.Track}): not in any budget here
 * @param heldBytes   their size
 * @param lostBuffers buffers declared lost since start: their only copy was on a worker that terminated (its process
 *                    died or its node left the cluster)
 * @param reclaimedPins pins released by the manager itself because the worker they were taken for terminated
 * @param totals      registered buffers by residency (host only, device only, both, none) and pins, over every buffer
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
        long refusedRequests,
        int heldBuffers,
        long heldBytes,
        long lostBuffers,
        long reclaimedPins,
        BufferTotals totals) implements CborSerializable {

    public MemoryState {
        locations = List.copyOf(locations);
        totals = totals == null ? BufferTotals.NONE : totals;
    }

    /** The figures before {@link BufferTotals} existed: totals are {@link BufferTotals#NONE}. */
    public MemoryState(List<LocationState> locations, int bufferCount, long evictions, long hits, long misses,
            long prefetches, long droppedHints, long invalidations, long refusedRequests, int heldBuffers,
            long heldBytes, long lostBuffers, long reclaimedPins) {
        this(locations, bufferCount, evictions, hits, misses, prefetches, droppedHints, invalidations, refusedRequests,
                heldBuffers, heldBytes, lostBuffers, reclaimedPins, BufferTotals.NONE);
    }

    /** The registry's figures, with nothing tracked on other nodes, lost or reclaimed. */
    public MemoryState(List<LocationState> locations, int bufferCount, long evictions, long hits, long misses,
            long prefetches, long droppedHints, long invalidations, long refusedRequests) {
        this(locations, bufferCount, evictions, hits, misses, prefetches, droppedHints, invalidations, refusedRequests,
                0, 0, 0, 0, BufferTotals.NONE);
    }

    /** This snapshot with {@code totals}. */
    public MemoryState withTotals(BufferTotals totals) {
        return new MemoryState(locations, bufferCount, evictions, hits, misses, prefetches, droppedHints, invalidations,
                refusedRequests, heldBuffers, heldBytes, lostBuffers, reclaimedPins, totals);
    }

    /** This snapshot with the manager's figures about other nodes' buffers. */
    public MemoryState withHolders(int heldBuffers, long heldBytes, long lostBuffers, long reclaimedPins) {
        return new MemoryState(locations, bufferCount, evictions, hits, misses, prefetches, droppedHints, invalidations,
                refusedRequests, heldBuffers, heldBytes, lostBuffers, reclaimedPins, totals);
    }

    /** Pinned bytes over every location. */
    public long pinnedBytes() {
        long pinned = 0;
        for (LocationState state : locations) {
            pinned += state.pinnedBytes();
        }
        return pinned;
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

    /**
     * Every registered buffer counted once, by where its current copies are: host memory only, devices only, both,
     * or nowhere (a file-backed weight not mapped now). Buffers and bytes, plus the buffers pinned now.
     */
    public record BufferTotals(long registeredBytes, int pinnedBuffers, int hostOnlyBuffers, long hostOnlyBytes,
            int deviceOnlyBuffers, long deviceOnlyBytes, int bothBuffers, long bothBytes, int unmappedBuffers,
            long unmappedBytes) {
        public static final BufferTotals NONE = new BufferTotals(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }
}
