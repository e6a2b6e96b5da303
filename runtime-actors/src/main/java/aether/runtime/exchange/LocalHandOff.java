package aether.runtime.exchange;

import aether.runtime.exchange.TensorTransferException.Reason;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The same-JVM exchange: {@link #send} hands the very segment it is given to whoever {@link #expect}s that tensor
 * version, with no copy, behind the same {@link TensorSender}/{@link TensorReceiver} API as Aeron, so a worker does not
 * care where its peer is. Since the bytes are shared, the segment's owner keeps it alive and unmodified for as long as
 * the receiver uses it (a tensor version is immutable; the memory manager owns lifetimes). The allocator given to
 * {@code expect} is never called. A send completes when the segment is handed over or parked for a later
 * {@code expect}; parked segments are kept until claimed or {@link #close}. Thread-safe; futures complete on the
 * thread of the call that matched them (a timeout on the JDK's delay-scheduler thread).
 */
public final class LocalHandOff implements TensorSender, TensorReceiver {

    private record Key(long tensorId, long version) {}

    private final Map<Key, MemorySegment> parked = new HashMap<>();
    private final Map<Key, List<CompletableFuture<MemorySegment>>> waiting = new HashMap<>();
    private boolean closed;

    @Override
    public CompletableFuture<Void> send(long tensorId, long version, MemorySegment payload) {
        Key key = new Key(tensorId, version);
        List<CompletableFuture<MemorySegment>> receivers;
        synchronized (this) {
            if (closed) {
                return CompletableFuture.failedFuture(
                        new TensorTransferException(tensorId, version, Reason.CLOSED, "local hand-off is closed"));
            }
            receivers = waiting.remove(key);
            if (receivers == null) {
                parked.put(key, payload);
            }
        }
        if (receivers != null) {
            for (CompletableFuture<MemorySegment> r : receivers) {
                r.complete(payload);
            }
        }
        return CompletableFuture.completedFuture(null);
    }

    @Override
    public CompletableFuture<MemorySegment> expect(long tensorId, long version, Duration timeout) {
        return expect(tensorId, version, null, timeout);
    }

    @Override
    public CompletableFuture<MemorySegment> expect(long tensorId, long version, TensorAllocator allocator,
            Duration timeout) {
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout: %s (expected: positive)".formatted(timeout));
        }
        Key key = new Key(tensorId, version);
        CompletableFuture<MemorySegment> future = new CompletableFuture<>();
        synchronized (this) {
            if (closed) {
                future.completeExceptionally(
                        new TensorTransferException(tensorId, version, Reason.CLOSED, "local hand-off is closed"));
                return future;
            }
            MemorySegment ready = parked.remove(key);
            if (ready != null) {
                future.complete(ready);
                return future;
            }
            waiting.computeIfAbsent(key, k -> new ArrayList<>(1)).add(future);
        }
        CompletableFuture.delayedExecutor(timeout.toNanos(), TimeUnit.NANOSECONDS).execute(() -> {
            synchronized (this) {
                List<CompletableFuture<MemorySegment>> list = waiting.get(key);
                if (list != null && list.remove(future) && list.isEmpty()) {
                    waiting.remove(key);
                }
            }
            future.completeExceptionally(new TensorTransferException(tensorId, version, Reason.TIMEOUT,
                    "not handed over within " + timeout + " (local hand-off)"));
        });
        return future;
    }

    /** Fails every pending expectation and forgets parked segments (their owners still own them). Idempotent. */
    @Override
    public void close() {
        List<List<CompletableFuture<MemorySegment>>> pending;
        List<Key> keys;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            keys = new ArrayList<>(waiting.keySet());
            pending = new ArrayList<>(waiting.values());
            waiting.clear();
            parked.clear();
        }
        for (int i = 0; i < keys.size(); i++) {
            for (CompletableFuture<MemorySegment> f : pending.get(i)) {
                f.completeExceptionally(new TensorTransferException(keys.get(i).tensorId(), keys.get(i).version(),
                        Reason.CLOSED, "local hand-off closed"));
            }
        }
    }
}
