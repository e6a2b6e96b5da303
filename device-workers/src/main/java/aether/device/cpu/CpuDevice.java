package aether.device.cpu;

import aether.device.spi.CompletionEvent;
import aether.device.spi.Device;
import aether.device.spi.DeviceBuffer;
import aether.device.spi.DeviceCapabilities;
import aether.device.spi.DeviceMemoryException;
import aether.device.spi.HostSegmentRunner;
import aether.device.spi.SegmentExecutionException;
import aether.runtime.protocol.DeviceKind;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.SegmentSpec;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The CPU as a {@link Device}: host memory is device memory. Buffers are 64-byte aligned off-heap blocks in size
 * classes, pooled on {@link #free} and reused by the next allocation of the class (a repeated step allocates nothing
 * new; closing a shared arena per buffer would cost a handshake with every thread), and segments run on {@code concurrency} dedicated platform threads,
 * one segment per thread, through a {@link HostSegmentRunner}. {@link #importHost} is a zero-copy view, so tensors
 * produced on this node are read where they are. Uploads and downloads are plain copies, done at once.
 */
public final class CpuDevice implements Device {

    private final DeviceCapabilities capabilities;
    private final HostSegmentRunner runner;
    /** How long an idle device thread spins before it parks: longer than the scheduler's gap between two segments. */
    static final long SPIN_NS = 50_000;

    /**
     * The production bound of {@link #inlineMaxElements()}: a segment this small is a few microseconds of work, less
     * than handing it to a device thread and back (a thread wake-up each way on a busy machine).
     */
    public static final long INLINE_MAX_ELEMENTS = 4096;

    private final SpinningExecutor threads;
    private final long inlineMaxElements;
    private final AtomicLong allocated = new AtomicLong();
    private final AtomicLong pooledBytes = new AtomicLong();
    private final ConcurrentHashMap<Long, ConcurrentLinkedQueue<MemorySegment>> pool = new ConcurrentHashMap<>();
    private final String name;

    /**
     * @param ordinal     this pool's ordinal among the node's CPU pools
     * @param concurrency segments run at once (threads)
     * @param memoryBytes the budget of {@link #allocate}
     * @param runner      lowers segments to kernels
     * @param ops         op kinds the runner supports ({@link aether.runtime.protocol.WorkerCapabilities#opKind})
     * @param dtypes      value types it computes
     * @param quantTypes  weight block types it reads
     */
    public CpuDevice(int ordinal, int concurrency, long memoryBytes, HostSegmentRunner runner, Set<String> ops,
            Set<GgmlType> dtypes, Set<GgmlType> quantTypes) {
        this(ordinal, concurrency, memoryBytes, runner, ops, dtypes, quantTypes, 0);
    }

    /**
     * As the other constructor, and segments whose graph holds at most {@code inlineMaxElements} tensor elements in
     * all (inputs, intermediates, outputs) run on the submitting thread (the worker actor's) instead of a device
     * thread; 0 runs every segment on the device threads.
     */
    public CpuDevice(int ordinal, int concurrency, long memoryBytes, HostSegmentRunner runner, Set<String> ops,
            Set<GgmlType> dtypes, Set<GgmlType> quantTypes, long inlineMaxElements) {
        this.capabilities = new DeviceCapabilities(DeviceKind.CPU, ordinal, memoryBytes, concurrency, ops, dtypes,
                quantTypes);
        this.runner = Objects.requireNonNull(runner, "runner");
        this.name = "cpu-" + ordinal;
        this.threads = new SpinningExecutor("aether-" + name, concurrency, SPIN_NS);
        if (inlineMaxElements < 0) {
            throw new IllegalArgumentException(name + ": inlineMaxElements " + inlineMaxElements + " (expected: 0+)");
        }
        this.inlineMaxElements = inlineMaxElements;
    }

    /**
     * The inline bound production devices use: {@link #INLINE_MAX_ELEMENTS}, or
     * {@code -Daether.cpu.inline-max-elements=N} (0 sends every segment to the device threads).
     */
    public static long inlineMaxElements() {
        return Long.getLong("aether.cpu.inline-max-elements", INLINE_MAX_ELEMENTS);
    }

    @Override
    public DeviceCapabilities capabilities() {
        return capabilities;
    }

    @Override
    public DeviceBuffer allocate(long byteSize) {
        if (byteSize < 0) {
            throw new IllegalArgumentException(name + ": allocate " + byteSize + " bytes (expected: 0+)");
        }
        long budget = capabilities.memoryBytes();
        long now;
        do {
            now = allocated.get();
            if (now + byteSize > budget) {
                throw new DeviceMemoryException(name, byteSize, now, budget);
            }
        } while (!allocated.compareAndSet(now, now + byteSize));
        long capacity = sizeClass(byteSize);
        ConcurrentLinkedQueue<MemorySegment> free = pool.get(capacity);
        MemorySegment block = free == null ? null : free.poll();
        if (block != null) {
            pooledBytes.addAndGet(-capacity);
        } else {
            block = Arena.ofAuto().allocate(capacity, 64);
        }
        return new HostBuffer(block, block.asSlice(0, byteSize));
    }

    /** Blocks are whole cache lines, rounded up to a power of two above 4 KiB so similar sizes share a pool. */
    static long sizeClass(long byteSize) {
        long lines = Math.max(64, (byteSize + 63) & ~63L);
        return lines <= 4096 ? lines : Long.highestOneBit(lines - 1) << 1;
    }

    @Override
    public DeviceBuffer importHost(MemorySegment host) {
        return new HostBuffer(null, host);
    }

    @Override
    public CompletionEvent upload(MemorySegment src, DeviceBuffer dst) {
        MemorySegment.copy(src, 0, dst.host(), 0, dst.byteSize());
        return CompletionEvent.completed();
    }

    @Override
    public CompletionEvent download(DeviceBuffer src, MemorySegment dst) {
        MemorySegment.copy(src.host(), 0, dst, 0, src.byteSize());
        return CompletionEvent.completed();
    }

    @Override
    public void free(DeviceBuffer buffer) {
        if (buffer instanceof HostBuffer h && h.release()) {
            allocated.addAndGet(-h.byteSize());
            long capacity = h.block.byteSize();
            // keep freed blocks for reuse while pooled + allocated stays within the budget; beyond, the GC reclaims them
            if (pooledBytes.addAndGet(capacity) + allocated.get() <= capabilities.memoryBytes()) {
                pool.computeIfAbsent(capacity, c -> new ConcurrentLinkedQueue<>()).offer(h.block);
            } else {
                pooledBytes.addAndGet(-capacity);
            }
        }
    }

    @Override
    public CompletionEvent submit(SegmentSpec segment, List<DeviceBuffer> inputs, List<DeviceBuffer> outputs) {
        List<MemorySegment> in = new ArrayList<>(inputs.size());
        for (DeviceBuffer b : inputs) {
            in.add(b.host());
        }
        List<MemorySegment> out = new ArrayList<>(outputs.size());
        for (DeviceBuffer b : outputs) {
            out.add(b.host());
        }
        CompletionEvent event = new CompletionEvent();
        if (elements(segment) <= inlineMaxElements) {
            run(segment, in, out, event);      // completes before submit returns
            return event;
        }
        try {
            threads.execute(new SpinningExecutor.Task() {
                @Override
                public void run() {
                    CpuDevice.this.run(segment, in, out, event);
                }

                @Override
                public void reject(RuntimeException reason) {
                    event.fail(new SegmentExecutionException(-1, "", name + " closed before segment "
                            + segment.index() + " started", reason));
                }
            });
        } catch (RejectedExecutionException e) {
            event.fail(new SegmentExecutionException(-1, "", name + " is closed", e));
        }
        return event;
    }

    private void run(SegmentSpec segment, List<MemorySegment> in, List<MemorySegment> out, CompletionEvent event) {
        if (!event.start()) {
            return;   // cancelled while queued
        }
        try {
            runner.run(segment, in, out);
            event.complete();
        } catch (SegmentExecutionException e) {
            event.fail(e);
        } catch (RuntimeException | Error e) {
            event.fail(new SegmentExecutionException(-1, "", name + ": segment " + segment.index() + " failed: " + e,
                    e));
        }
    }

    /** Tensor elements of every node of the segment's graph: a bound on its work for the small ones run inline. */
    static long elements(SegmentSpec segment) {
        long total = 0;
        for (aether.runtime.ir.Node n : segment.graph().nodes()) {
            total += n.type().shape().size();
        }
        return total;
    }

    @Override
    public long allocatedBytes() {
        return allocated.get();
    }

    @Override
    public void close() {
        threads.close();
    }

    @Override
    public String toString() {
        return name;
    }

    /** Host memory: a slice of a pooled block, or (block null) a view from {@link #importHost} that owns nothing. */
    private static final class HostBuffer implements DeviceBuffer {
        private final MemorySegment block;
        private final MemorySegment segment;
        private final java.util.concurrent.atomic.AtomicBoolean freed = new java.util.concurrent.atomic.AtomicBoolean();

        HostBuffer(MemorySegment block, MemorySegment segment) {
            this.block = block;
            this.segment = segment;
        }

        boolean release() {
            return block != null && freed.compareAndSet(false, true);
        }

        @Override
        public long byteSize() {
            return segment.byteSize();
        }

        @Override
        public Location location() {
            return Location.HOST;
        }

        @Override
        public MemorySegment host() {
            return segment;
        }
    }
}
