package aether.runtime.transfer;

import java.lang.foreign.MemorySegment;

/**
 * More tensors a node's {@link TensorService} may serve besides its {@link TensorStore}: e.g. the outputs device
 * workers keep in their own store. Called on the service's actor thread, so it must be quick and must not block.
 * The segment returned stays valid and unmodified while the service sends it (the owner releases a tensor only when
 * no job needs it any more).
 */
@FunctionalInterface
public interface TensorSource {

    /** The bytes of that tensor version if this node holds them, else null. */
    MemorySegment find(long tensorId, long version);

    TensorSource NONE = (tensorId, version) -> null;
}
