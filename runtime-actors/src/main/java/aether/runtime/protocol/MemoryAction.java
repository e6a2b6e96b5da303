package aether.runtime.protocol;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;

/**
 * A change the memory manager has already booked and that the worker owning {@link #location()} must carry out.
 * The manager's bookkeeping assumes the action happens; a worker that cannot carry one out must tell the manager.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
    @JsonSubTypes.Type(value = MemoryAction.Evict.class, name = "evict"),
    @JsonSubTypes.Type(value = MemoryAction.Prefetch.class, name = "prefetch"),
    @JsonSubTypes.Type(value = MemoryAction.Invalidate.class, name = "invalidate")
})
public sealed interface MemoryAction extends CborSerializable {
    BufferId bufferId();

    /** The location whose worker acts. */
    Location location();

    long sizeBytes();

    /** Evict the copy at {@code location} (over budget), as {@code action} says. */
    record Evict(BufferId bufferId, Location location, EvictionAction action, long sizeBytes) implements MemoryAction {}

    /** Copy the buffer to {@code location} from a current copy (or the model file) ahead of its use. */
    record Prefetch(BufferId bufferId, Location location, long sizeBytes) implements MemoryAction {}

    /** The copy at {@code location} is stale (the buffer was written elsewhere): free it. */
    record Invalidate(BufferId bufferId, Location location, long sizeBytes) implements MemoryAction {}
}
