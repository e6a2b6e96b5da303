package aether.scheduler.memory;

/**
 * One buffer's life in step order: written by step {@code first}, last read by step {@code last} (inclusive; a value
 * read by the step that writes another value is live during that step, so the two never share memory).
 *
 * @param node  the node owning the storage
 * @param bytes its size in bytes
 * @param first producing step
 * @param last  last reading step ({@code >= first})
 */
public record Lifetime(int node, long bytes, int first, int last) {

    public Lifetime {
        if (bytes < 0 || first < 0 || last < first) {
            throw new IllegalArgumentException("lifetime of %" + node + ": bytes=" + bytes + ", steps " + first + ".."
                    + last + " (expected: bytes >= 0, 0 <= first <= last)");
        }
    }

    /** True when both are live during some step. */
    public boolean overlaps(Lifetime o) {
        return first <= o.last && o.first <= last;
    }
}
