package aether.scheduler.memory;

import java.util.List;

/**
 * Where each stored value lives in one arena. {@link #offset} of a node is its buffer's offset (a reshape reports its
 * operand's), or -1 for values outside the arena (leaves) and fused-away members.
 *
 * @param offsets           byte offset per node id, or -1
 * @param sizes             byte size per node id (of its storage), or 0
 * @param lifetimes         the intervals that were packed
 * @param peakBytes         arena size: the highest end of any placed buffer; never more than the sum of the 64-byte
 *                          aligned sizes (it can exceed {@code intermediateBytes} only by alignment padding)
 * @param intermediateBytes sum of the sizes of all stored values: what one buffer per value would need
 * @param alignment         every offset is a multiple of this
 */
public record ArenaPlan(long[] offsets, long[] sizes, List<Lifetime> lifetimes, long peakBytes,
        long intermediateBytes, int alignment) {

    public ArenaPlan {
        offsets = offsets.clone();
        sizes = sizes.clone();
        lifetimes = List.copyOf(lifetimes);
    }

    @Override
    public long[] offsets() {
        return offsets.clone();
    }

    @Override
    public long[] sizes() {
        return sizes.clone();
    }

    public long offset(int node) {
        return offsets[node];
    }

    public long bytes(int node) {
        return sizes[node];
    }

    /** Peak over the one-buffer-per-value total, e.g. {@code peak 1.2 MB of 4.8 MB (25%)}. */
    public String summary() {
        return String.format(java.util.Locale.ROOT, "peak %d bytes of %d bytes of intermediates (%.1f%%), %d buffers",
                peakBytes, intermediateBytes, intermediateBytes == 0 ? 100.0 : 100.0 * peakBytes / intermediateBytes,
                lifetimes.size());
    }
}
