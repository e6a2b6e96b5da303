package aether.llm.gguf;

import java.lang.foreign.MemorySegment;

/**
 * Supplies one tensor's bytes to {@link GgufWriter} a window at a time, so a multi-gigabyte model streams through a
 * small buffer. The writer calls {@link #fill} on its own thread with consecutive, non-overlapping windows in
 * increasing offset order that together cover the tensor exactly once.
 */
@FunctionalInterface
public interface TensorSource {

    /**
     * Writes the tensor's bytes {@code [offset, offset + window.byteSize())} into {@code window} (all of it). The
     * window is only valid during the call.
     */
    void fill(long offset, MemorySegment window);

    /** Bytes already in memory or in a mapped file; the writer sends them without an intermediate copy. */
    static TensorSource of(MemorySegment bytes) {
        return new Segment(bytes);
    }

    /** A source over a segment (see {@link #of(MemorySegment)}). */
    record Segment(MemorySegment bytes) implements TensorSource {
        @Override
        public void fill(long offset, MemorySegment window) {
            MemorySegment.copy(bytes, offset, window, 0, window.byteSize());
        }
    }
}
