package aether.device.spi;

import aether.runtime.protocol.SegmentSpec;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * One compute device as a worker drives it: the CPU pool now, a CUDA GPU next. Everything that can take time is
 * asynchronous: {@link #submit} enqueues a segment and returns a {@link CompletionEvent} at once (a CUDA device records
 * an event on its stream), uploads and downloads return events too. Buffers are explicit: {@link #allocate} books
 * device memory against {@link DeviceCapabilities#memoryBytes()}, {@link #free} gives it back.
 *
 * <p>Thread safety: every method may be called from any thread (an actor's handler, a completion callback); none
 * blocks on device work. Ownership: a buffer from {@link #allocate} belongs to the caller until {@link #free}; a buffer
 * from {@link #importHost} is a view and frees nothing. Buffers passed to {@code submit} must stay valid and unmodified
 * (inputs) or untouched (outputs) until its event completes.
 */
public interface Device extends AutoCloseable {

    /** What this device is and can run. */
    DeviceCapabilities capabilities();

    /**
     * Books {@code byteSize} bytes of device memory.
     *
     * @throws DeviceMemoryException when the device's memory budget cannot hold them
     */
    DeviceBuffer allocate(long byteSize);

    /**
     * A buffer this device reads in place over host memory (zero copy), or null when the device cannot address host
     * memory and the caller must {@link #allocate} and {@link #upload}. The view does not own {@code host}.
     */
    DeviceBuffer importHost(MemorySegment host);

    /** Copies {@code src} (host memory, {@code dst.byteSize()} bytes) into {@code dst}. */
    CompletionEvent upload(MemorySegment src, DeviceBuffer dst);

    /** Copies {@code src} into {@code dst} (host memory, {@code src.byteSize()} bytes). */
    CompletionEvent download(DeviceBuffer src, MemorySegment dst);

    /** Gives an allocated buffer's memory back. Idempotent; a view from {@link #importHost} is ignored. */
    void free(DeviceBuffer buffer);

    /**
     * Runs {@code segment}: its input nodes read {@code inputs} (in {@link SegmentSpec#inputNodes()} order), its outputs
     * are written to {@code outputs} (in {@code graph.outputs()} order, each exactly its value's storage size). The
     * event fails with {@link SegmentExecutionException} naming the node when an op fails.
     */
    CompletionEvent submit(SegmentSpec segment, List<DeviceBuffer> inputs, List<DeviceBuffer> outputs);

    /** Bytes currently allocated. */
    long allocatedBytes();

    /**
     * The device copies this device keeps between segments ({@link ResidentBuffers}), or null when it keeps none (a
     * device that reads host memory in place has nothing to keep). A worker reads a held copy instead of uploading and
     * hands its uploads and outputs over to it once a segment is done.
     */
    default ResidentBuffers residency() {
        return null;
    }

    /** Stops the device's threads; work not started fails. Buffers are invalid afterwards. */
    @Override
    void close();
}
