package aether.runtime.memory;

import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.EvictionAction;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.MemoryAction.Evict;
import java.util.ArrayList;
import java.util.List;

/**
 * Least-recently-used eviction that cannot lose data: it picks the oldest unpinned copies at an over-budget location,
 * each with the one action that keeps a current copy of its bytes somewhere (another location, host memory after a
 * copy, or the model file of a weight). Stateless.
 */
public final class EvictionPolicy {
    private EvictionPolicy() {}

    /**
     * How the copy of {@code buffer} at {@code location} can be evicted, or null when it cannot: pinned, not there, or
     * the only copy of data on host (there is nowhere further to spill it).
     */
    public static EvictionAction actionFor(BufferRecord buffer, Location location) {
        if (buffer.pinned() || !buffer.residentAt(location)) {
            return null;
        }
        boolean otherCopy = buffer.residency().size() > 1;
        if (location instanceof Location.Host) {
            if (buffer.fileBacked()) {
                return EvictionAction.DROP_MAPPING;
            }
            return otherCopy ? EvictionAction.FREE : null;
        }
        return otherCopy || buffer.fileBacked() ? EvictionAction.FREE : EvictionAction.COPY_TO_HOST_THEN_FREE;
    }

    /**
     * Victims at {@code location} whose sizes add up to at least {@code bytesToFree}, or as many as exist, taken in
     * {@code leastRecentFirst} order.
     *
     * @param exclude a buffer never to pick (the one an allocation is for), or null
     */
    public static List<Evict> selectVictims(
            Location location, long bytesToFree, Iterable<BufferRecord> leastRecentFirst, BufferId exclude) {
        List<Evict> victims = new ArrayList<>();
        long freed = 0;
        for (BufferRecord buffer : leastRecentFirst) {
            if (freed >= bytesToFree) {
                break;
            }
            if (buffer.id().equals(exclude)) {
                continue;
            }
            EvictionAction action = actionFor(buffer, location);
            if (action != null) {
                victims.add(new Evict(buffer.id(), location, action, buffer.sizeBytes()));
                freed += buffer.sizeBytes();
            }
        }
        return victims;
    }
}
