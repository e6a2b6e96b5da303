package aether.device.spi;

/**
 * An op of a segment failed. {@code node} is the failing node of the segment's graph, or -1 when the failure is the
 * segment's as a whole (a missing kernel for the device, out of memory); {@code op} is its op name ({@code ""} then).
 */
public final class SegmentExecutionException extends RuntimeException {
    private final int node;
    private final String op;

    public SegmentExecutionException(int node, String op, String message, Throwable cause) {
        super(message, cause);
        this.node = node;
        this.op = op == null ? "" : op;
    }

    public int node() {
        return node;
    }

    public String op() {
        return op;
    }
}
