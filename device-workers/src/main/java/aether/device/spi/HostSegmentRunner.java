package aether.device.spi;

import aether.runtime.protocol.SegmentSpec;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Lowers and runs a segment over host memory: how a CPU device turns a segment's graph into kernel calls. The
 * scheduler module provides the implementation (the graph compiler lives there); device-workers only calls it, on the
 * device's own threads.
 *
 * <p>Contract: {@code inputs} hold the segment's input values in {@link SegmentSpec#inputNodes()} order, each in its
 * dtype's storage format (little-endian, row-major); each of {@code outputs} has exactly the storage size of the
 * matching graph output and is fully written on success. Implementations are thread-safe: a device runs several
 * segments at once. Op failures are thrown as {@link SegmentExecutionException} naming the node.
 */
@FunctionalInterface
public interface HostSegmentRunner {

    void run(SegmentSpec segment, List<MemorySegment> inputs, List<MemorySegment> outputs);
}
