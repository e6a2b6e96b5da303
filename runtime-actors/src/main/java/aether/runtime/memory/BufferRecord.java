package aether.runtime.memory;

import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.Location;
import java.util.HashSet;
import java.util.Set;

/**
 * What the registry knows about one buffer: an immutable snapshot, replaced on every change.
 *
 * @param residency   locations holding a current copy (of {@code version}); empty only for a file-backed weight
 * @param pinCount    in-flight uses; a pinned buffer is never evicted or freed
 * @param lastUseTick the registry's logical clock at the last use; larger is more recent
 * @param fileBacked  true while the model file holds these bytes (a weight never written since registration)
 */
public record BufferRecord(
        BufferId id,
        long sizeBytes,
        BufferOrigin origin,
        long version,
        Set<Location> residency,
        int pinCount,
        long lastUseTick,
        boolean fileBacked) {

    public BufferRecord {
        residency = Set.copyOf(residency);
    }

    public boolean pinned() {
        return pinCount > 0;
    }

    public boolean residentAt(Location location) {
        return residency.contains(location);
    }

    BufferRecord withResidency(Set<Location> newResidency) {
        return new BufferRecord(id, sizeBytes, origin, version, newResidency, pinCount, lastUseTick, fileBacked);
    }

    BufferRecord withCopyAt(Location location) {
        Set<Location> more = new HashSet<>(residency);
        more.add(location);
        return withResidency(more);
    }

    BufferRecord withoutCopyAt(Location location) {
        Set<Location> fewer = new HashSet<>(residency);
        fewer.remove(location);
        return withResidency(fewer);
    }

    BufferRecord withPinCount(int newPinCount) {
        return new BufferRecord(id, sizeBytes, origin, version, residency, newPinCount, lastUseTick, fileBacked);
    }

    BufferRecord withLastUse(long tick) {
        return new BufferRecord(id, sizeBytes, origin, version, residency, pinCount, tick, fileBacked);
    }

    BufferRecord writtenAt(Location location) {
        return new BufferRecord(id, sizeBytes, origin, version + 1, Set.of(location), pinCount, lastUseTick, false);
    }
}
