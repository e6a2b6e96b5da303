package aether.runtime.exchange;

import static aether.runtime.exchange.FrameDescriptor.CHUNK_LENGTH_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.CRC_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.HEADER_LENGTH;
import static aether.runtime.exchange.FrameDescriptor.MAGIC;
import static aether.runtime.exchange.FrameDescriptor.MAGIC_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.ORDER;
import static aether.runtime.exchange.FrameDescriptor.PAYLOAD_OFFSET_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.RESERVED_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.TENSOR_ID_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.TOTAL_LENGTH_OFFSET;
import static aether.runtime.exchange.FrameDescriptor.VERSION_OFFSET;

import aether.runtime.exchange.TensorTransferException.Reason;
import io.aeron.ExclusivePublication;
import io.aeron.Publication;
import io.aeron.logbuffer.BufferClaim;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.concurrent.CompletableFuture;
import java.util.zip.CRC32C;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.ManyToOneConcurrentLinkedQueue;

/**
 * Sends tensors over one Aeron publication. {@link #send} may be called from any thread and only enqueues; the frames
 * are written by {@link #doWork} on the node's agent thread, which interleaves in-flight sends a few frames at a time
 * and writes each frame in place with {@link Publication#tryClaim}: the payload bytes are copied once, from the tensor
 * into the log, and nothing is allocated per frame.
 */
final class AeronTensorSender implements TensorSender, Agent {

    /** Test hook: sees each frame after it is written and checksummed; returning false drops it (claim aborted). */
    interface FrameHook {
        boolean beforeCommit(long tensorId, long version, long payloadOffset, int chunkLength,
                MutableDirectBuffer frame, int frameOffset);
    }

    /** All of memory: the frame being claimed is addressed through it, so copies from the payload stay scope-checked. */
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    /** Payload windows are 1 GiB apart and overlap by one chunk, so any chunk lies wholly inside one ByteBuffer. */
    static final int WINDOW_SHIFT = 30;

    private final ExchangeNode node;
    private final ExclusivePublication publication;
    private final String name;
    private final long sendTimeoutNs;
    private final int framesPerTurn;
    private final int maxChunk;
    private final ManyToOneConcurrentLinkedQueue<SendJob> incoming = new ManyToOneConcurrentLinkedQueue<>();
    private final ArrayList<SendJob> active = new ArrayList<>();
    private final BufferClaim claim = new BufferClaim();
    private final CRC32C crc = new CRC32C();
    private final ByteBuffer header = ByteBuffer.allocateDirect(HEADER_LENGTH).order(ORDER);
    private volatile boolean closed;
    private volatile FrameHook hook;
    private volatile int windowShift = WINDOW_SHIFT;
    private int turn;

    private static final class SendJob {
        final long tensorId;
        final long version;
        final long totalLength;
        final MemorySegment payload;
        final ByteBuffer[] windows;
        final int windowShift;
        final CompletableFuture<Void> future = new CompletableFuture<>();
        long offset;
        boolean started;
        long lastProgressNs;

        SendJob(long tensorId, long version, MemorySegment payload, ByteBuffer[] windows, int windowShift) {
            this.tensorId = tensorId;
            this.version = version;
            this.payload = payload;
            this.totalLength = payload.byteSize();
            this.windows = windows;
            this.windowShift = windowShift;
        }
    }

    AeronTensorSender(ExchangeNode node, ExclusivePublication publication, ExchangeConfig config) {
        this.node = node;
        this.publication = publication;
        this.name = "sender[" + publication.channel() + " stream " + publication.streamId() + "]";
        this.sendTimeoutNs = config.sendTimeout().toNanos();
        this.framesPerTurn = config.framesPerTurn();
        this.maxChunk = publication.maxPayloadLength() - HEADER_LENGTH;
        if (maxChunk <= 0) {
            throw new IllegalArgumentException("%s: max payload %d bytes leaves no room after the %d-byte frame header"
                    .formatted(name, publication.maxPayloadLength(), HEADER_LENGTH));
        }
    }

    void hook(FrameHook hook) {
        this.hook = hook;
    }

    /** Tests: smaller windows, so that chunks cross window boundaries without a multi-GiB payload. */
    void windowShift(int shift) {
        if (shift < 20 || shift > WINDOW_SHIFT) {
            throw new IllegalArgumentException("window shift: %d (expected: 20..%d)".formatted(shift, WINDOW_SHIFT));
        }
        this.windowShift = shift;
    }

    /** Payload bytes per frame on this publication. */
    int maxChunkLength() {
        return maxChunk;
    }

    boolean isConnected() {
        return publication.isConnected();
    }

    @Override
    public CompletableFuture<Void> send(long tensorId, long version, MemorySegment payload) {
        if (closed) {
            return CompletableFuture.failedFuture(
                    new TensorTransferException(tensorId, version, Reason.CLOSED, name + " is closed"));
        }
        if (!payload.isAccessibleBy(node.agentThread())) {
            return CompletableFuture.failedFuture(new TensorTransferException(tensorId, version,
                    Reason.UNSUPPORTED_PAYLOAD, ("payload %s is confined to another thread (expected: a segment of a "
                            + "shared, global or automatic arena, or of an array)").formatted(payload)));
        }
        int shift = windowShift;
        ByteBuffer[] windows;
        try {
            windows = windows(payload, maxChunk, shift);
        } catch (UnsupportedOperationException e) {
            return CompletableFuture.failedFuture(new TensorTransferException(tensorId, version,
                    Reason.UNSUPPORTED_PAYLOAD, ("payload %s cannot be viewed as a ByteBuffer (expected: a native "
                            + "segment or one backed by byte[])").formatted(payload), e));
        }
        SendJob job = new SendJob(tensorId, version, payload, windows, shift);
        incoming.offer(job);
        if (closed) {   // close() raced with us: make sure the job is failed, not stranded
            failQueued();
        }
        return job.future;
    }

    private static ByteBuffer[] windows(MemorySegment payload, int maxChunk, int shift) {
        long size = payload.byteSize();
        int count = size == 0 ? 1 : (int) (((size - 1) >>> shift) + 1);
        ByteBuffer[] windows = new ByteBuffer[count];
        for (int k = 0; k < count; k++) {
            long start = (long) k << shift;
            long length = Math.min(size - start, (1L << shift) + maxChunk);
            windows[k] = payload.asSlice(start, Math.max(0, length)).asByteBuffer();
        }
        return windows;
    }

    @Override
    public int doWork() {
        long nowNs = System.nanoTime();
        int work = 0;
        for (SendJob job; (job = incoming.poll()) != null; ) {
            job.lastProgressNs = nowNs;
            active.add(job);
            work++;
        }
        int n = active.size();
        for (int i = 0; i < n && !active.isEmpty(); i++) {
            if (turn >= active.size()) {
                turn = 0;
            }
            SendJob job = active.get(turn);
            int sent = sendFrames(job, nowNs);
            if (sent < 0) {
                break;      // the publication is back-pressured: no other job can go either
            }
            work += sent;
            if (job.future.isDone()) {
                active.remove(turn);
            } else {
                turn++;
            }
        }
        return work;
    }

    /** Frames written, or -1 if the publication pushed back before any (the job waits for the next duty cycle). */
    private int sendFrames(SendJob job, long nowNs) {
        int frames = 0;
        while (frames < framesPerTurn) {
            int chunk = (int) Math.min(maxChunk, job.totalLength - job.offset);
            long result = publication.tryClaim(HEADER_LENGTH + chunk, claim);
            if (result < 0) {
                return onRefused(job, result, nowNs, frames);
            }
            try {
                writeFrame(job, chunk);
            } catch (IllegalStateException e) {     // the payload's arena was closed under us: a caller bug
                claim.abort();
                job.future.completeExceptionally(new TensorTransferException(job.tensorId, job.version,
                        Reason.CLOSED, "payload memory became inaccessible at byte %,d of %,d on %s"
                                .formatted(job.offset, job.totalLength, name), e));
                return frames;
            }
            job.started = true;
            job.offset += chunk;
            job.lastProgressNs = nowNs;
            frames++;
            if (job.offset == job.totalLength) {
                job.future.complete(null);
                return frames;
            }
        }
        return frames;
    }

    private void writeFrame(SendJob job, int chunk) {
        MutableDirectBuffer frame = claim.buffer();
        int frameOffset = claim.offset();
        int window = (int) (job.offset >>> job.windowShift);
        int index = (int) (job.offset - ((long) window << job.windowShift));
        ByteBuffer source = job.windows[window];
        long frameAddress = frame.addressOffset() + frameOffset;
        MemorySegment.copy(job.payload, job.offset, ALL, frameAddress + HEADER_LENGTH, chunk);

        header.clear();
        header.putInt(MAGIC_OFFSET, MAGIC)
                .putInt(CHUNK_LENGTH_OFFSET, chunk)
                .putLong(TENSOR_ID_OFFSET, job.tensorId)
                .putLong(VERSION_OFFSET, job.version)
                .putLong(TOTAL_LENGTH_OFFSET, job.totalLength)
                .putLong(PAYLOAD_OFFSET_OFFSET, job.offset)
                .putInt(CRC_OFFSET, 0)
                .putInt(RESERVED_OFFSET, 0);
        crc.reset();
        source.clear();
        source.limit(index + chunk);
        source.position(index);
        crc.update(source);     // payload first (scope-checked like the copy), then the header: the receiver's order
        header.limit(CRC_OFFSET);
        crc.update(header);
        header.clear();
        header.putInt(CRC_OFFSET, (int) crc.getValue());
        frame.putBytes(frameOffset, header, 0, HEADER_LENGTH);

        FrameHook h = hook;
        if (h != null && !h.beforeCommit(job.tensorId, job.version, job.offset, chunk, frame, frameOffset)) {
            claim.abort();
        } else {
            claim.commit();
        }
    }

    private int onRefused(SendJob job, long result, long nowNs, int frames) {
        if (result == Publication.BACK_PRESSURED || result == Publication.ADMIN_ACTION) {
            if (nowNs - job.lastProgressNs > sendTimeoutNs) {
                fail(job, Reason.TIMEOUT, "back-pressured for more than %d ms at byte %,d of %,d on %s"
                        .formatted(sendTimeoutNs / 1_000_000, job.offset, job.totalLength, name));
                return frames;
            }
            return frames > 0 ? frames : -1;
        }
        if (result == Publication.NOT_CONNECTED) {
            if (job.started) {
                fail(job, Reason.NOT_CONNECTED, "the subscriber went away at byte %,d of %,d on %s"
                        .formatted(job.offset, job.totalLength, name));
            } else if (nowNs - job.lastProgressNs > sendTimeoutNs) {
                fail(job, Reason.NOT_CONNECTED, "no subscriber connected within %d ms on %s"
                        .formatted(sendTimeoutNs / 1_000_000, name));
            }
            return frames;   // other jobs may have a different fate only by time, so let them check theirs
        }
        if (result == Publication.MAX_POSITION_EXCEEDED) {
            fail(job, Reason.MAX_POSITION_EXCEEDED, "publication reached its maximum position on " + name);
            return frames;
        }
        fail(job, Reason.CLOSED, "publication closed (result %d) on %s".formatted(result, name));
        return frames;
    }

    private static void fail(SendJob job, Reason reason, String detail) {
        job.future.completeExceptionally(new TensorTransferException(job.tensorId, job.version, reason, detail));
    }

    private void failQueued() {
        for (SendJob job; (job = incoming.poll()) != null; ) {
            fail(job, Reason.CLOSED, name + " closed before the transfer started");
        }
    }

    @Override
    public void onClose() {
        closed = true;
        for (SendJob job : active) {
            fail(job, Reason.CLOSED, "%s closed at byte %,d of %,d".formatted(name, job.offset, job.totalLength));
        }
        active.clear();
        failQueued();
        publication.close();
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
