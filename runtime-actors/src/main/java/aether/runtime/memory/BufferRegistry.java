package aether.runtime.memory;

import aether.runtime.memory.AllocateReply.Granted;
import aether.runtime.memory.AllocateReply.Rejected;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.EvictionAction;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.MemoryAction;
import aether.runtime.protocol.MemoryAction.Evict;
import aether.runtime.protocol.MemoryAction.Invalidate;
import aether.runtime.protocol.MemoryAction.Prefetch;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The memory manager's bookkeeping: every buffer's copies, version, pins and recency, and each location's soft budget.
 * Every change that adds bytes to a location is followed by LRU eviction there (and on host, when evicting spilled
 * copies to it), so after each call a location is within its budget unless nothing evictable is left there.
 *
 * <p>It never loses data by construction: a pinned buffer is never evicted or freed; the last current copy of a buffer
 * that is not file-backed is only ever moved (device to host), never dropped. Evictions, prefetches and invalidations
 * are booked at once and returned as {@link MemoryAction}s for the owning workers to carry out, in order.
 *
 * <p>Refused requests throw {@link MemoryRequestException} before changing anything. Not thread-safe: owned by one
 * actor.
 */
public final class BufferRegistry {
    /** 64 PiB: far above any real buffer, low enough that sums of sizes cannot overflow a long. */
    public static final long MAX_BUFFER_BYTES = 1L << 56;

    private final Map<BufferId, BufferRecord> buffers = new HashMap<>();
    /** lastUseTick → buffer; ticks are unique, so this is the LRU order, least recent first. */
    private final TreeMap<Long, BufferId> byLastUse = new TreeMap<>();
    private final Map<Location, Budget> budgets = new LinkedHashMap<>();
    private long tick;
    private long evictions;
    private long hits;
    private long misses;
    private long prefetches;
    private long droppedHints;
    private long invalidations;
    private long refusedRequests;

    /**
     * A registry with these soft limits, in bytes; other locations can be added with {@link #setBudget}. Host memory
     * is always a location (copies evicted from devices land there): without a limit given, it has none.
     *
     * @throws IllegalArgumentException on a negative limit
     */
    public BufferRegistry(Map<Location, Long> budgetBytes) {
        budgets.put(Location.HOST, new Budget(Location.HOST, Long.MAX_VALUE));
        budgetBytes.forEach((location, bytes) -> {
            if (bytes == null || bytes < 0) {
                throw new IllegalArgumentException("budget of %s: %s bytes (expected: 0+)".formatted(location, bytes));
            }
            budgets.put(location, new Budget(location, bytes));
        });
    }

    /**
     * Sets (or adds) a location's soft limit. Lowering it evicts at once.
     *
     * @return the evictions to carry out
     */
    public List<MemoryAction> setBudget(Location location, long limitBytes) {
        if (limitBytes < 0) {
            throw refuse(null, "budget of %s: %,d bytes (expected: 0+)".formatted(location, limitBytes));
        }
        Budget budget = budgets.get(location);
        if (budget == null) {
            budgets.put(location, new Budget(location, limitBytes));
            return List.of();
        }
        budget.setLimit(limitBytes);
        List<MemoryAction> actions = new ArrayList<>();
        rebalance(location, null, actions);
        return actions;
    }

    /**
     * Registers a buffer that already exists at {@code residency} (a mapped weight, an activation a worker produced).
     * Never refused for lack of room: the budget is soft; older copies are evicted, possibly this one if it is the only
     * thing left to evict.
     *
     * @param residency where current copies are; may be empty only for a weight (its bytes are in the model file)
     * @return the evictions to carry out
     */
    public List<MemoryAction> register(BufferId id, long sizeBytes, BufferOrigin origin, Set<Location> residency) {
        if (buffers.containsKey(id)) {
            throw refuse(id, "%s is already registered: %s".formatted(id, buffers.get(id)));
        }
        if (sizeBytes <= 0 || sizeBytes > MAX_BUFFER_BYTES) {
            throw refuse(id, "%s: size %,d bytes (expected: 1 to %,d)".formatted(id, sizeBytes, MAX_BUFFER_BYTES));
        }
        if (residency.isEmpty() && origin != BufferOrigin.WEIGHT) {
            throw refuse(id, "%s: a %s buffer needs at least one location (found none)".formatted(id, origin));
        }
        for (Location location : residency) {
            budgetOf(id, location);
        }
        BufferRecord buffer = new BufferRecord(id, sizeBytes, origin, 0, residency, 0, ++tick,
                origin == BufferOrigin.WEIGHT);
        buffers.put(id, buffer);
        byLastUse.put(buffer.lastUseTick(), id);
        for (Location location : residency) {
            budgets.get(location).add(sizeBytes);
        }
        return rebalanceDevicesThenHost(residency);
    }

    /**
     * Records a use of {@code id} at {@code location}: it becomes the most recently used buffer.
     *
     * @return true on a hit (a current copy is there), false on a miss
     */
    public boolean touch(BufferId id, Location location) {
        BufferRecord buffer = known(id);
        budgetOf(id, location);
        boolean hit = buffer.residentAt(location);
        if (hit) {
            hits++;
        } else {
            misses++;
        }
        markUsed(buffer);
        return hit;
    }

    /** Pins {@code id} for an in-flight use: until as many unpins, none of its copies is evicted and it can't be freed. */
    public void pin(BufferId id) {
        BufferRecord buffer = known(id);
        buffers.put(id, buffer.withPinCount(Math.addExact(buffer.pinCount(), 1)));
    }

    /**
     * Ends one in-flight use. When the last pin goes, locations left over budget while it was pinned are rebalanced.
     *
     * @return the evictions to carry out
     */
    public List<MemoryAction> unpin(BufferId id) {
        BufferRecord buffer = known(id);
        if (!buffer.pinned()) {
            throw refuse(id, "%s: unpin without a pin (pin count 0)".formatted(id));
        }
        BufferRecord unpinned = buffer.withPinCount(buffer.pinCount() - 1);
        buffers.put(id, unpinned);
        if (unpinned.pinned()) {
            return List.of();
        }
        return rebalanceDevicesThenHost(unpinned.residency());
    }

    /**
     * Books a copy of {@code id} at {@code location}: a new buffer when {@code id} is unknown, or one more copy of a
     * known one (an upload). Granted when it fits after evicting older unpinned copies there (the grant lists those
     * evictions), rejected without any change otherwise. Either way the buffer becomes the most recently used.
     *
     * @param pin also pin the buffer on grant (an output about to be written)
     */
    public AllocateReply allocate(BufferId id, BufferOrigin origin, long sizeBytes, Location location, boolean pin) {
        Budget budget = budgets.get(location);
        if (budget == null) {
            refusedRequests++;
            return new Rejected(id, location, sizeBytes, 0, 0, 0,
                    "%s has no budget (known: %s)".formatted(location, budgets.keySet()));
        }
        BufferRecord existing = buffers.get(id);
        boolean mismatch = existing != null && (existing.sizeBytes() != sizeBytes || existing.origin() != origin);
        if (sizeBytes <= 0 || sizeBytes > MAX_BUFFER_BYTES || mismatch) {
            refusedRequests++;
            String found = existing == null ? "new buffer" : "registered as %s of %,d bytes".formatted(
                    existing.origin(), existing.sizeBytes());
            return new Rejected(id, location, sizeBytes, budget.limitBytes(), budget.usedBytes(),
                    pinnedBytesAt(location),
                    "%s: asked for %s of %,d bytes at %s, but %s (expected: size 1 to %,d, matching the registration)"
                            .formatted(id, origin, sizeBytes, location, found, MAX_BUFFER_BYTES));
        }
        if (existing != null && existing.residentAt(location)) {
            hits++;
            BufferRecord used = markUsed(existing);
            if (pin) {
                buffers.put(id, used.withPinCount(Math.addExact(used.pinCount(), 1)));
            }
            return new Granted(id, location, List.of());
        }
        if (existing != null) {
            misses++;
        }
        long keep = budget.usedBytes() + sizeBytes <= budget.limitBytes()
                ? 0   // fits as is: skip the scan for evictable bytes
                : budget.usedBytes() - evictableBytesAt(location, id);
        if (keep + sizeBytes > budget.limitBytes()) {
            refusedRequests++;
            long pinned = pinnedBytesAt(location);
            return new Rejected(id, location, sizeBytes, budget.limitBytes(), budget.usedBytes(), pinned,
                    "%s: %,d bytes requested for %s, budget %,d, used %,d, of which %,d cannot be evicted (%,d pinned)"
                            .formatted(location, sizeBytes, id, budget.limitBytes(), budget.usedBytes(), keep,
                                    pinned));
        }
        BufferRecord buffer = existing != null
                ? existing.withCopyAt(location)
                : new BufferRecord(id, sizeBytes, origin, 0, Set.of(location), 0, 0,
                        origin == BufferOrigin.WEIGHT);
        if (pin) {
            buffer = buffer.withPinCount(Math.addExact(buffer.pinCount(), 1));
        }
        buffers.put(id, buffer);
        markUsed(buffer);
        budget.add(sizeBytes);
        List<MemoryAction> actions = new ArrayList<>();
        rebalance(location, id, actions);
        return new Granted(id, location, actions);
    }

    /**
     * Records that {@code id} was written at {@code location}: its version goes up, that copy becomes the only current
     * one and a weight is no longer backed by its file.
     *
     * @return invalidations of the now stale copies, for their workers to free
     */
    public List<MemoryAction> written(BufferId id, Location location) {
        BufferRecord buffer = known(id);
        if (!buffer.residentAt(location)) {
            throw refuse(id, "%s written at %s, but its current copies are at %s".formatted(
                    id, location, buffer.residency()));
        }
        List<MemoryAction> actions = new ArrayList<>();
        for (Location stale : buffer.residency()) {
            if (!stale.equals(location)) {
                budgets.get(stale).release(buffer.sizeBytes());
                actions.add(new Invalidate(id, stale, buffer.sizeBytes()));
                invalidations++;
            }
        }
        markUsed(buffer.writtenAt(location));
        return actions;
    }

    /** Forgets {@code id} and releases its bytes everywhere; its owner frees the copies. Refused while pinned. */
    public void free(BufferId id) {
        BufferRecord buffer = known(id);
        if (buffer.pinned()) {
            throw refuse(id, "%s is pinned (%d in-flight uses): unpin before freeing".formatted(
                    id, buffer.pinCount()));
        }
        buffers.remove(id);
        byLastUse.remove(buffer.lastUseTick());
        for (Location location : buffer.residency()) {
            budgets.get(location).release(buffer.sizeBytes());
        }
    }

    /**
     * Acts on the scheduler's hint that {@code ids} will soon be used at {@code location}: each becomes most recently
     * used, and each not there yet is copied there if it fits in free room. Hints never evict, so they can't push out
     * buffers needed sooner; unknown ids and buffers that don't fit are counted as dropped hints.
     *
     * @return the prefetches to carry out
     */
    public List<MemoryAction> prefetch(List<BufferId> ids, Location location) {
        Budget budget = budgetOf(null, location);
        List<MemoryAction> actions = new ArrayList<>();
        for (BufferId id : ids) {
            BufferRecord buffer = buffers.get(id);
            if (buffer == null) {
                droppedHints++;
                continue;
            }
            if (!buffer.residentAt(location)) {
                if (budget.usedBytes() + buffer.sizeBytes() > budget.limitBytes()) {
                    droppedHints++;
                    continue;
                }
                buffer = buffer.withCopyAt(location);
                budget.add(buffer.sizeBytes());
                actions.add(new Prefetch(id, location, buffer.sizeBytes()));
                prefetches++;
            }
            markUsed(buffer);
        }
        return actions;
    }

    /** The record of {@code id}, or null when it is not registered. */
    public BufferRecord record(BufferId id) {
        return buffers.get(id);
    }

    /** Every registered buffer, least recently used first. */
    public List<BufferRecord> leastRecentFirst() {
        List<BufferRecord> ordered = new ArrayList<>(byLastUse.size());
        for (BufferId id : byLastUse.values()) {
            ordered.add(buffers.get(id));
        }
        return ordered;
    }

    public Collection<Location> locations() {
        return List.copyOf(budgets.keySet());
    }

    public long usedBytes(Location location) {
        return budgetOf(null, location).usedBytes();
    }

    public long budgetBytes(Location location) {
        return budgetOf(null, location).limitBytes();
    }

    /** Bytes at {@code location} that eviction could free (unpinned copies with a safe action). */
    public long evictableBytesAt(Location location) {
        return evictableBytesAt(location, null);
    }

    public MemoryState snapshot() {
        List<MemoryState.LocationState> states = new ArrayList<>(budgets.size());
        for (Budget budget : budgets.values()) {
            int count = 0;
            for (BufferRecord buffer : buffers.values()) {
                if (buffer.residentAt(budget.location())) {
                    count++;
                }
            }
            states.add(new MemoryState.LocationState(budget.location(), budget.limitBytes(), budget.usedBytes(),
                    pinnedBytesAt(budget.location()), count));
        }
        return new MemoryState(states, buffers.size(), evictions, hits, misses, prefetches, droppedHints,
                invalidations, refusedRequests).withTotals(totals());
    }

    /** Every buffer counted once by residency, and the pinned ones: one pass over the registry. */
    private MemoryState.BufferTotals totals() {
        long registered = 0;
        int pinned = 0;
        int hostOnly = 0, deviceOnly = 0, both = 0, unmapped = 0;
        long hostOnlyBytes = 0, deviceOnlyBytes = 0, bothBytes = 0, unmappedBytes = 0;
        for (BufferRecord buffer : buffers.values()) {
            long size = buffer.sizeBytes();
            registered += size;
            if (buffer.pinned()) {
                pinned++;
            }
            boolean host = buffer.residentAt(Location.HOST);
            boolean device = buffer.residency().size() > (host ? 1 : 0);
            if (host && device) {
                both++;
                bothBytes += size;
            } else if (host) {
                hostOnly++;
                hostOnlyBytes += size;
            } else if (device) {
                deviceOnly++;
                deviceOnlyBytes += size;
            } else {
                unmapped++;
                unmappedBytes += size;
            }
        }
        return new MemoryState.BufferTotals(registered, pinned, hostOnly, hostOnlyBytes, deviceOnly, deviceOnlyBytes,
                both, bothBytes, unmapped, unmappedBytes);
    }

    /**
     * Devices first: their evictions may spill copies to host. Host first could free a host copy only to have the
     * device's eviction copy the same bytes back.
     */
    private List<MemoryAction> rebalanceDevicesThenHost(Set<Location> locations) {
        List<MemoryAction> actions = new ArrayList<>();
        for (Location location : locations) {
            if (!location.equals(Location.HOST)) {
                rebalance(location, null, actions);
            }
        }
        if (locations.contains(Location.HOST)) {
            rebalance(Location.HOST, null, actions);
        }
        return actions;
    }

    /** Evicts least recently used copies at {@code location} until it is within budget or nothing evictable is left. */
    private void rebalance(Location location, BufferId exclude, List<MemoryAction> actions) {
        Budget budget = budgets.get(location);
        if (budget.excessBytes() <= 0) {
            return;
        }
        List<Evict> victims = EvictionPolicy.selectVictims(location, budget.excessBytes(), leastRecentFirst(), exclude);
        boolean spilledToHost = false;
        for (Evict victim : victims) {
            BufferRecord buffer = buffers.get(victim.bufferId());
            BufferRecord after = buffer.withoutCopyAt(location);
            budget.release(buffer.sizeBytes());
            if (victim.action() == EvictionAction.COPY_TO_HOST_THEN_FREE) {
                after = after.withCopyAt(Location.HOST);
                budgets.get(Location.HOST).add(buffer.sizeBytes());
                spilledToHost = true;
            }
            buffers.put(after.id(), after);
            actions.add(victim);
            evictions++;
        }
        if (spilledToHost) {
            rebalance(Location.HOST, null, actions);
        }
    }

    private long evictableBytesAt(Location location, BufferId exclude) {
        long bytes = 0;
        for (BufferRecord buffer : buffers.values()) {
            if (!buffer.id().equals(exclude) && EvictionPolicy.actionFor(buffer, location) != null) {
                bytes += buffer.sizeBytes();
            }
        }
        return bytes;
    }

    private long pinnedBytesAt(Location location) {
        long bytes = 0;
        for (BufferRecord buffer : buffers.values()) {
            if (buffer.pinned() && buffer.residentAt(location)) {
                bytes += buffer.sizeBytes();
            }
        }
        return bytes;
    }

    private BufferRecord markUsed(BufferRecord buffer) {
        byLastUse.remove(buffer.lastUseTick());
        BufferRecord used = buffer.withLastUse(++tick);
        byLastUse.put(used.lastUseTick(), used.id());
        buffers.put(used.id(), used);
        return used;
    }

    private BufferRecord known(BufferId id) {
        BufferRecord buffer = buffers.get(id);
        if (buffer == null) {
            throw refuse(id, "%s is not registered (%d buffers are)".formatted(id, buffers.size()));
        }
        return buffer;
    }

    private Budget budgetOf(BufferId id, Location location) {
        Budget budget = budgets.get(location);
        if (budget == null) {
            throw refuse(id, "%s has no budget (known: %s)".formatted(location, budgets.keySet()));
        }
        return budget;
    }

    private MemoryRequestException refuse(BufferId id, String message) {
        refusedRequests++;
        return new MemoryRequestException(id, message);
    }
}
