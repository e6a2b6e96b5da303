package aether.runtime.exchange;

/**
 * A tensor transfer that failed: the future of a send or a receive completes exceptionally with this. The bytes of a
 * failed receive must not be used (they may be partial or, for {@link Reason#CHECKSUM}, never copied at all).
 */
public final class TensorTransferException extends RuntimeException {

    /** Why a transfer failed. */
    public enum Reason {
        /** The transfer did not complete before its deadline (lost tail, stalled or absent sender). */
        TIMEOUT,
        /** A frame's CRC32C did not match its bytes. */
        CHECKSUM,
        /** Frames out of order, with impossible offsets or lengths, or from a transfer joined in the middle. */
        PROTOCOL,
        /** No subscriber connected to the publication within the send timeout, or the connection was lost. */
        NOT_CONNECTED,
        /** The publication, subscription or node was closed. */
        CLOSED,
        /** The publication reached Aeron's maximum position; a new publication is needed. */
        MAX_POSITION_EXCEEDED,
        /** The publisher of an in-flight transfer went away (its Aeron image became unavailable). */
        PUBLISHER_GONE,
        /** The destination allocator failed or returned a segment that is too small. */
        ALLOCATION,
        /** The payload cannot be sent (e.g. a heap segment not backed by {@code byte[]}). */
        UNSUPPORTED_PAYLOAD
    }

    private final long tensorId;
    private final long version;
    private final Reason reason;

    public TensorTransferException(long tensorId, long version, Reason reason, String detail) {
        super("tensor %d v%d: %s: %s".formatted(tensorId, version, reason, detail));
        this.tensorId = tensorId;
        this.version = version;
        this.reason = reason;
    }

    public TensorTransferException(long tensorId, long version, Reason reason, String detail, Throwable cause) {
        this(tensorId, version, reason, detail);
        initCause(cause);
    }

    public long tensorId() {
        return tensorId;
    }

    public long version() {
        return version;
    }

    public Reason reason() {
        return reason;
    }
}
