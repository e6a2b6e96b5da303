package aether.runtime.memory;

import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.CborSerializable;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.MemoryAction;
import java.util.List;

/** The answer to an allocation: space granted (possibly by evicting older copies) or refused. */
public sealed interface AllocateReply extends CborSerializable {

    /**
     * The copy at {@code location} is booked. {@code evictions} (possibly empty) are what made room, in the order
     * the owning workers must carry them out; subscribers are told about each as well.
     */
    record Granted(BufferId bufferId, Location location, List<MemoryAction> evictions) implements AllocateReply {
        public Granted {
            evictions = List.copyOf(evictions);
        }
    }

    /**
     * Nothing changed: even after evicting every evictable copy, {@code requestedBytes} would not fit in
     * {@code budgetBytes}, or the request itself was invalid ({@code reason} says which).
     *
     * @param pinnedBytes bytes at {@code location} held by pinned buffers
     */
    record Rejected(
            BufferId bufferId,
            Location location,
            long requestedBytes,
            long budgetBytes,
            long usedBytes,
            long pinnedBytes,
            String reason) implements AllocateReply {}
}
