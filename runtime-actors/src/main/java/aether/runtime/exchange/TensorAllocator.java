package aether.runtime.exchange;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Gives the destination of an incoming tensor. Called on the exchange's agent thread when the first frame of a
 * transfer arrives, so it must be quick and must not block; the segment it returns belongs to the caller (the exchange
 * never frees it), must be at least {@code byteLength} bytes and must stay valid until the transfer's future completes.
 * If the transfer fails the segment is abandoned to its owner. Throwing fails the transfer with
 * {@link TensorTransferException.Reason#ALLOCATION}.
 */
@FunctionalInterface
public interface TensorAllocator {

    MemorySegment allocate(long tensorId, long version, long byteLength);

    /** Allocates from {@code arena}, 64-byte aligned (a cache line, enough for any vector load). */
    static TensorAllocator of(Arena arena) {
        return (tensorId, version, byteLength) -> arena.allocate(byteLength, 64);
    }
}
