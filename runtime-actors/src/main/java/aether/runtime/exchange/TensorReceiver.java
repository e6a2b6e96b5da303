package aether.runtime.exchange;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * Receives tensor payloads from one transport (an Aeron subscription, or a {@link LocalHandOff}). Thread-safe and
 * non-blocking. A transfer may start before or after {@link #expect} is called for it: one that arrives first goes into
 * the receiver's default allocator and is kept (for a limited time) until claimed.
 *
 * <p>The futures complete on the exchange's agent thread: attach heavy continuations with the {@code *Async} methods,
 * or hand the result to an actor ({@code pipeToSelf}); a slow inline continuation stalls every transfer of the node.
 */
public interface TensorReceiver extends AutoCloseable {

    /**
     * The payload of tensor {@code tensorId} at {@code version}, allocated by this receiver's default allocator.
     * Fails with {@link TensorTransferException} if it is not complete within {@code timeout}, is corrupt, or its
     * publisher goes away.
     */
    CompletableFuture<MemorySegment> expect(long tensorId, long version, Duration timeout);

    /**
     * As {@link #expect(long, long, Duration)}, with the bytes going into a segment from {@code allocator} if the
     * transfer has not started when this call is processed (otherwise the default allocator already holds them).
     */
    CompletableFuture<MemorySegment> expect(long tensorId, long version, TensorAllocator allocator,
            Duration timeout);

    /** Stops receiving; pending expectations fail with {@link TensorTransferException.Reason#CLOSED}. Idempotent. */
    @Override
    void close();
}
