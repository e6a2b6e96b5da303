package aether.runtime.exchange;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;

/**
 * Sends tensor payloads to one peer (an Aeron channel and stream, or a {@link LocalHandOff}). Thread-safe and
 * non-blocking: {@link #send} only enqueues, so an actor may call it from a message handler.
 *
 * <p>Ownership: a tensor version is immutable, so the payload must not be modified while it is in flight. With Aeron the
 * bytes are copied and the payload may be freed once the returned future completes; with {@link LocalHandOff} the
 * receiver gets the same segment, so whoever owns its arena keeps it alive for the receiver (the memory manager does).
 */
public interface TensorSender extends AutoCloseable {

    /**
     * Starts sending {@code payload} (any length, including 0 and more than 2 GiB) as tensor {@code tensorId} at
     * {@code version}. The future completes when every byte has been handed to the transport (Aeron: committed to the
     * publication's log), not when the peer has read it; it fails with {@link TensorTransferException} on back pressure
     * lasting past the send timeout, no connected peer, or a closed transport.
     */
    CompletableFuture<Void> send(long tensorId, long version, MemorySegment payload);

    /** Stops sending; transfers still in flight fail with {@link TensorTransferException.Reason#CLOSED}. Idempotent. */
    @Override
    void close();
}
