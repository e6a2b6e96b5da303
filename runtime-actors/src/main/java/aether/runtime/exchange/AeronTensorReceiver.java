package aether.runtime.exchange;

import static aether.runtime.exchange.FrameDescriptor.CHUNK_LENGTH_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.CRC_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.HEADER_LENGTH;
import static aether.runtime.exchange.FrameDescriptor.MAGIC;
import static aether.runtime.exchange.FrameDescriptor.MAGIC_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.ORDER;
import static aether.runtime.exchange.FrameDescriptor.PAYLOAD_OFFSET_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.TENSOR_ID_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.TOTAL_LENGTH_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.VERSION_OFFSET;

import aether.runtime.exchange.TensorTransferException.Reason;
import io.aeron.Subscription;
import io.aeron.logbuffer.FragmentHandler;
import io.aeron.logbuffer.FrameDescriptor;
import io.aeron.logbuffer.Header;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32C;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.ManyToOneConcurrentLinkedQueue;

/**
 * Receives tensors from one Aeron subscription and reassembles each straight into its destination segment. All state
 * is confined to the node's agent thread: {@link #expect} and image events only enqueue commands. Per frame it checks
 * the CRC32C over the frame as it lies in the term buffer, then copies the chunk once into the destination; nothing is
 * allocated per frame (transfers are looked up by a scan from the last hit, there are few in flight at a time).
 */
final class AeronTensorReceiver implements TensorReceiver, Agent, FragmentHandler {

    private static final int FRAGMENT_LIMIT = 64;
    private static final long CHECK_INTERVAL_NS = 1_000_000;

    private final ExchangeNode node;
    private final String name;
    private final TensorAllocator defaultAllocator;
    private final long transferTimeoutNs;
    private final long retentionNs;
    private final ManyToOneConcurrentLinkedQueue<Object> commands = new ManyToOneConcurrentLinkedQueue<>();
    private final ArrayList<Transfer> transfers = new ArrayList<>();
    private final ArrayList<Expectation> waiting = new ArrayList<>();
    private final ArrayList<Parked> parked = new ArrayList<>();
    private final TermViews views = new TermViews();
    private final CRC32C crc = new CRC32C();
    private final AtomicLong rejectedFrames = new AtomicLong();
    private volatile int unclaimed;
    private volatile Subscription subscription;
    private volatile boolean closed;
    private long nowNs;
    private long nextCheckNs;
    private int lastHit;

    private record Expectation(long tensorId, long version, TensorAllocator allocator, long deadlineNs,
            CompletableFuture<MemorySegment> future) {}

    private record ImageGone(int sessionId) {}

    /** A completed or failed transfer that nobody expected yet. */
    private record Parked(long tensorId, long version, MemorySegment data, TensorTransferException failure,
            long sinceNs) {}

    private static final class Transfer {
        final long tensorId;
        final long version;
        final int sessionId;
        final long totalLength;
        MemorySegment destination;
        CompletableFuture<MemorySegment> future;
        long deadlineNs = Long.MAX_VALUE;
        long received;
        long lastProgressNs;
        boolean dead;

        Transfer(long tensorId, long version, int sessionId, long totalLength) {
            this.tensorId = tensorId;
            this.version = version;
            this.sessionId = sessionId;
            this.totalLength = totalLength;
        }
    }

    AeronTensorReceiver(ExchangeNode node, String channel, int streamId, TensorAllocator defaultAllocator,
            ExchangeConfig config) {
        this.node = node;
        this.name = "receiver[" + channel + " stream " + streamId + "]";
        this.defaultAllocator = Objects.requireNonNull(defaultAllocator, "defaultAllocator");
        this.transferTimeoutNs = config.transferTimeout().toNanos();
        this.retentionNs = config.unclaimedRetention().toNanos();
    }

    void subscription(Subscription subscription) {
        this.subscription = subscription;
    }

    /** Called by the client conductor when a publisher's image goes away. */
    void onUnavailableImage(int sessionId) {
        commands.offer(new ImageGone(sessionId));
    }

    /** Frames dropped because they were not exchange frames or were fragmented by Aeron. */
    long rejectedFrames() {
        return rejectedFrames.get();
    }

    /** Transfers finished (or failed) that nobody has expected yet. */
    int unclaimed() {
        return unclaimed;
    }

    boolean isConnected() {
        Subscription s = subscription;
        return s != null && s.isConnected();
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
        CompletableFuture<MemorySegment> future = new CompletableFuture<>();
        if (closed) {
            future.completeExceptionally(new TensorTransferException(tensorId, version, Reason.CLOSED, name + " is closed"));
            return future;
        }
        long deadlineNs = System.nanoTime() + timeout.toNanos();
        commands.offer(new Expectation(tensorId, version, allocator, deadlineNs, future));
        if (closed) {
            failCommands();
        }
        return future;
    }

    @Override
    public int doWork() {
        nowNs = System.nanoTime();
        int work = 0;
        for (Object command; (command = commands.poll()) != null; ) {
            switch (command) {
                case Expectation e -> onExpect(e);
                case ImageGone g -> onImageGone(g.sessionId());
                default -> throw new IllegalStateException("unknown command " + command);
            }
            work++;
        }
        Subscription s = subscription;
        if (s != null) {
            work += s.poll(this, FRAGMENT_LIMIT);
        }
        if (nowNs >= nextCheckNs) {
            nextCheckNs = nowNs + CHECK_INTERVAL_NS;
            work += checkDeadlines();
        }
        return work;
    }

    @Override
    public void onFragment(DirectBuffer buffer, int offset, int length, Header header) {
        if ((header.flags() & FrameDescriptor.UNFRAGMENTED) != FrameDescriptor.UNFRAGMENTED
                || length < HEADER_LENGTH || buffer.getInt(offset + MAGIC_OFFSET, ORDER) != MAGIC) {
            rejectedFrames.incrementAndGet();   // not ours: exchange frames always fit one Aeron frame
            return;
        }
        int chunk = buffer.getInt(offset + CHUNK_LENGTH_OFFSET, ORDER);
        long tensorId = buffer.getLong(offset + TENSOR_ID_OFFSET, ORDER);
        long version = buffer.getLong(offset + VERSION_OFFSET, ORDER);
        long total = buffer.getLong(offset + TOTAL_LENGTH_OFFSET, ORDER);
        long at = buffer.getLong(offset + PAYLOAD_OFFSET_OFFSET, ORDER);
        int expectedCrc = buffer.getInt(offset + CRC_OFFSET, ORDER);
        Transfer t = find(tensorId, version);

        if (chunk != length - HEADER_LENGTH) {
            onBadFrame(t, tensorId, version, header.sessionId(), total, Reason.PROTOCOL,
                    "frame says %,d payload bytes but carries %,d".formatted(chunk, length - HEADER_LENGTH));
            return;
        }
        views.select(buffer);
        int payloadStart = offset + HEADER_LENGTH;
        crc.reset();
        crc.update(views.range(payloadStart, payloadStart + chunk));
        crc.update(views.range(offset, offset + CRC_OFFSET));
        int actualCrc = (int) crc.getValue();
        if (actualCrc != expectedCrc) {
            onBadFrame(t, tensorId, version, header.sessionId(), total, Reason.CHECKSUM,
                    "CRC32C mismatch in the frame for bytes [%,d, %,d) (expected: %08x, computed: %08x)"
                            .formatted(at, at + chunk, expectedCrc, actualCrc));
            return;
        }
        if (total < 0 || at < 0 || at > total - chunk) {
            onBadFrame(t, tensorId, version, header.sessionId(), total, Reason.PROTOCOL,
                    "chunk [%,d, +%,d) lies outside a %,d-byte payload".formatted(at, chunk, total));
            return;
        }

        if (t == null || (t.dead && at == 0)) {
            if (t != null) {
                transfers.remove(t);        // a retry of a transfer that failed: start afresh
            }
            if (at != 0) {
                t = startDead(tensorId, version, header.sessionId(), total);
                fail(t, Reason.PROTOCOL, "joined the transfer at byte %,d of %,d (its start was not received)"
                        .formatted(at, total));
                return;
            }
            t = start(tensorId, version, header.sessionId(), total);
            if (t.dead || total == 0) {
                return;     // failed to allocate, or an empty payload that start() already completed
            }
        } else if (t.dead) {
            if (at + chunk == total) {
                transfers.remove(t);        // the tail of a failed transfer passed by: forget it
            }
            return;
        } else if (at != t.received || total != t.totalLength) {
            fail(t, Reason.PROTOCOL, "frame for bytes [%,d, %,d) of %,d (expected: bytes from %,d of %,d)"
                    .formatted(at, at + chunk, total, t.received, t.totalLength));
            return;
        }

        try {
            MemorySegment.copy(views.segment(), payloadStart, t.destination, at, chunk);
        } catch (IllegalStateException e) {     // the destination's arena was closed while the transfer ran
            fail(t, Reason.ALLOCATION, "destination memory became inaccessible at byte %,d of %,d".formatted(at, total), e);
            return;
        }
        t.received += chunk;
        t.lastProgressNs = nowNs;
        if (t.received == t.totalLength) {
            complete(t);
        }
    }

    private Transfer find(long tensorId, long version) {
        int n = transfers.size();
        if (lastHit >= n) {
            lastHit = 0;    // the list shrank since the last hit
        }
        for (int i = 0; i < n; i++) {
            int k = lastHit + i < n ? lastHit + i : lastHit + i - n;
            Transfer t = transfers.get(k);
            if (t.tensorId == tensorId && t.version == version) {
                lastHit = k;
                return t;
            }
        }
        return null;
    }

    private Transfer start(long tensorId, long version, int sessionId, long total) {
        Transfer t = new Transfer(tensorId, version, sessionId, total);
        t.lastProgressNs = nowNs;
        transfers.add(t);
        TensorAllocator allocator = defaultAllocator;
        for (int i = 0; i < waiting.size(); i++) {
            Expectation e = waiting.get(i);
            if (e.tensorId() == tensorId && e.version() == version) {
                waiting.remove(i--);
                if (t.future == null) {
                    t.future = e.future();
                    t.deadlineNs = e.deadlineNs();
                    if (e.allocator() != null) {
                        allocator = e.allocator();
                    }
                } else {
                    forward(t.future, e.future());     // a second expect of the same transfer gets the same outcome
                }
            }
        }
        MemorySegment destination;
        try {
            destination = allocator.allocate(tensorId, version, total);
        } catch (RuntimeException | OutOfMemoryError e) {
            fail(t, Reason.ALLOCATION, "allocating %,d bytes failed: %s".formatted(total, e), e);
            return t;
        }
        if (destination == null || destination.byteSize() < total || destination.isReadOnly()
                || !destination.isAccessibleBy(Thread.currentThread())) {
            fail(t, Reason.ALLOCATION, ("allocator returned %s (expected: a writable segment of at least %,d bytes, "
                    + "not confined to another thread)").formatted(destination, total), null);
            return t;
        }
        t.destination = destination.byteSize() == total ? destination : destination.asSlice(0, total);
        if (total == 0) {
            complete(t);
        }
        return t;
    }

    private Transfer startDead(long tensorId, long version, int sessionId, long total) {
        Transfer t = new Transfer(tensorId, version, sessionId, total);
        t.lastProgressNs = nowNs;
        transfers.add(t);
        for (int i = 0; i < waiting.size(); i++) {
            Expectation e = waiting.get(i);
            if (e.tensorId() == tensorId && e.version() == version) {
                waiting.remove(i--);
                if (t.future == null) {
                    t.future = e.future();
                } else {
                    forward(t.future, e.future());
                }
            }
        }
        return t;
    }

    private void onBadFrame(Transfer t, long tensorId, long version, int sessionId, long total, Reason reason,
            String detail) {
        if (t == null) {
            t = startDead(tensorId, version, sessionId, total);
        } else if (t.dead) {
            return;
        }
        fail(t, reason, detail);
    }

    private void complete(Transfer t) {
        transfers.remove(t);
        if (t.future != null) {
            t.future.complete(t.destination);
        } else {
            parked.add(new Parked(t.tensorId, t.version, t.destination, null, nowNs));
            unclaimed = parked.size();
        }
    }

    private void fail(Transfer t, Reason reason, String detail) {
        fail(t, reason, detail, null);
    }

    private void fail(Transfer t, Reason reason, String detail, Throwable cause) {
        t.dead = true;
        t.lastProgressNs = nowNs;
        t.destination = null;
        var failure = new TensorTransferException(t.tensorId, t.version, reason, detail + " on " + name, cause);
        if (t.future != null) {
            t.future.completeExceptionally(failure);
        } else {
            parked.add(new Parked(t.tensorId, t.version, null, failure, nowNs));
            unclaimed = parked.size();
        }
    }

    private void onExpect(Expectation e) {
        for (int i = 0; i < parked.size(); i++) {
            Parked p = parked.get(i);
            if (p.tensorId() == e.tensorId() && p.version() == e.version()) {
                parked.remove(i);
                unclaimed = parked.size();
                if (p.failure() != null) {
                    e.future().completeExceptionally(p.failure());
                } else {
                    e.future().complete(p.data());
                }
                return;
            }
        }
        Transfer t = find(e.tensorId(), e.version());
        if (t != null && !t.dead) {
            if (t.future == null) {
                t.future = e.future();
                t.deadlineNs = e.deadlineNs();
            } else {
                forward(t.future, e.future());
            }
            return;
        }
        waiting.add(e);
    }

    private static void forward(CompletableFuture<MemorySegment> from, CompletableFuture<MemorySegment> to) {
        from.whenComplete((data, error) -> {
            if (error != null) {
                to.completeExceptionally(error);
            } else {
                to.complete(data);
            }
        });
    }

    private void onImageGone(int sessionId) {
        for (int i = 0; i < transfers.size(); i++) {
            Transfer t = transfers.get(i);
            if (t.sessionId == sessionId && !t.dead) {
                fail(t, Reason.PUBLISHER_GONE, "publisher session %d went away after %,d of %,d bytes"
                        .formatted(sessionId, t.received, t.totalLength));
            }
        }
    }

    private int checkDeadlines() {
        int work = 0;
        for (int i = waiting.size() - 1; i >= 0; i--) {
            Expectation e = waiting.get(i);
            if (nowNs - e.deadlineNs() >= 0) {
                waiting.remove(i);
                e.future().completeExceptionally(new TensorTransferException(e.tensorId(), e.version(),
                        Reason.TIMEOUT, "no frame of it arrived before the deadline on " + name));
                work++;
            }
        }
        for (int i = transfers.size() - 1; i >= 0; i--) {
            Transfer t = transfers.get(i);
            if (t.dead) {
                if (nowNs - t.lastProgressNs > transferTimeoutNs) {
                    transfers.remove(i);
                    work++;
                }
            } else if (t.future != null ? nowNs - t.deadlineNs >= 0 : nowNs - t.lastProgressNs > transferTimeoutNs) {
                fail(t, Reason.TIMEOUT, "received %,d of %,d bytes before the deadline".formatted(t.received,
                        t.totalLength));
                work++;
            }
        }
        for (int i = parked.size() - 1; i >= 0; i--) {
            if (nowNs - parked.get(i).sinceNs() > retentionNs) {
                parked.remove(i);
                work++;
            }
        }
        unclaimed = parked.size();
        lastHit = 0;
        return work;
    }

    private void failCommands() {
        for (Object command; (command = commands.poll()) != null; ) {
            if (command instanceof Expectation e) {
                e.future().completeExceptionally(
                        new TensorTransferException(e.tensorId(), e.version(), Reason.CLOSED, name + " closed"));
            }
        }
    }

    @Override
    public void onClose() {
        closed = true;
        for (Transfer t : transfers) {
            if (!t.dead && t.future != null) {
                t.future.completeExceptionally(new TensorTransferException(t.tensorId, t.version, Reason.CLOSED,
                        "%s closed after %,d of %,d bytes".formatted(name, t.received, t.totalLength)));
            }
        }
        for (Expectation e : waiting) {
            e.future().completeExceptionally(
                    new TensorTransferException(e.tensorId(), e.version(), Reason.CLOSED, name + " closed"));
        }
        transfers.clear();
        waiting.clear();
        parked.clear();
        failCommands();
        Subscription s = subscription;
        if (s != null) {
            s.close();
        }
    }

    @Override
    public String roleName() {
        return name;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            node.remove(this);
        }
    }
}
