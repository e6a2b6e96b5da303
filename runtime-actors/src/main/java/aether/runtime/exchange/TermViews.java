package aether.runtime.exchange;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import org.agrona.DirectBuffer;

/**
 * {@code MemorySegment} and {@code ByteBuffer} views over the Aeron term buffers that a subscription hands to its
 * fragment handler, made once per term and reused for every frame, so the hot path copies with
 * {@link MemorySegment#copy} and checksums with the CRC32C intrinsic without allocating. A term buffer is a mapped
 * region that lives as long as its image; a view is only used while Aeron is handing out that very region, so a view
 * of an unmapped term is never touched. Confined to the agent thread.
 */
final class TermViews {

    private static final int SLOTS = 16;   // 3 terms per image: room for 5 publishers before views get remade

    private final long[] addresses = new long[SLOTS];
    private final int[] capacities = new int[SLOTS];
    private final MemorySegment[] segments = new MemorySegment[SLOTS];
    private final ByteBuffer[] buffers = new ByteBuffer[SLOTS];
    private int next;
    private int current;

    /** Selects the views of {@code term}, making them on first sight. */
    void select(DirectBuffer term) {
        long address = term.addressOffset();
        int capacity = term.capacity();
        for (int i = 0; i < SLOTS; i++) {
            if (addresses[i] == address && capacities[i] == capacity && segments[i] != null) {
                current = i;
                return;
            }
        }
        if (term.byteArray() != null) {
            throw new IllegalStateException("term buffer is on the heap (expected: a mapped log buffer)");
        }
        int slot = next;
        next = (next + 1) % SLOTS;
        MemorySegment segment = MemorySegment.ofAddress(address).reinterpret(capacity);
        addresses[slot] = address;
        capacities[slot] = capacity;
        segments[slot] = segment;
        buffers[slot] = segment.asByteBuffer();
        current = slot;
    }

    MemorySegment segment() {
        return segments[current];
    }

    /** The selected term as a ByteBuffer, with position {@code from} and limit {@code to}. */
    ByteBuffer range(int from, int to) {
        ByteBuffer b = buffers[current];
        b.clear();
        b.limit(to);
        b.position(from);
        return b;
    }
}
