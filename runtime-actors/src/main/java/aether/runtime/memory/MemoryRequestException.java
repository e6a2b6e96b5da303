package aether.runtime.memory;

import aether.runtime.protocol.BufferId;

/**
 * A request the bookkeeping refuses (unknown buffer, size mismatch, freeing a pinned buffer...). Thrown before anything
 * changes, so a refused request leaves the registry as it was. The actor answers it with a failure reply.
 */
public final class MemoryRequestException extends RuntimeException {
    private final BufferId bufferId;

    public MemoryRequestException(BufferId bufferId, String message) {
        super(message);
        this.bufferId = bufferId;
    }

    /** The buffer the request was about, or null when it named none. */
    public BufferId bufferId() {
        return bufferId;
    }
}
