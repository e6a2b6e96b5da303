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
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The CPU as a {@link Device}: host memory is device memory (buffers are 64-byte aligned off-heap segments, each in
 * its own shared arena so it can be freed alone), and segments run on {@code concurrency} dedicated platform threads,
 * one segment per thread, through a {@link HostSegmentRunner}. {@link #importHost} is a zero-copy view, so tensors
 * produced on this node are read where they are. Uploads and downloads are plain copies, done at once.
 */
public final class CpuDevice implements Device {

    private final DeviceCapabilities capabilities;
    private final HostSegmentRunner runner;
    private final ExecutorService threads;
    private final AtomicLong allocated = new AtomicLong();
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
        this.capabilities = new DeviceCapabilities(DeviceKind.CPU, ordinal, memoryBytes, concurrency, ops, dtypes,
                quantTypes);
        this.runner = Objects.requireNonNull(runner, "runner");
        this.name = "cpu-" + ordinal;
        AtomicInteger count = new AtomicInteger();
        this.threads = Executors.newFixedThreadPool(concurrency, r -> Thread.ofPlatform().daemon()
                .name("aether-" + name + "-" + count.getAndIncrement()).unstarted(r));
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
        Arena arena = Arena.ofShared();
        return new HostBuffer(arena, arena.allocate(Math.max(byteSize, 1), 64).asSlice(0, byteSize));
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
        try {
            threads.execute(() -> {
                if (!event.start()) {
                    return;   // cancelled while queued
                }
                try {
                    runner.run(segment, in, out);
                    event.complete();
                } catch (SegmentExecutionException e) {
                    event.fail(e);
                } catch (RuntimeException | Error e) {
                    event.fail(new SegmentExecutionException(-1, "", name + ": segment " + segment.index()
                            + " failed: " + e, e));
                }
            });
        } catch (RejectedExecutionException e) {
            event.fail(new SegmentExecutionException(-1, "", name + " is closed", e));
        }
        return event;
    }

    @Override
    public long allocatedBytes() {
        return allocated.get();
    }

    @Override
    public void close() {
        threads.shutdownNow();
    }

    @Override
    public String toString() {
        return name;
    }

    /** Host memory; owns its arena unless it is a view from {@link #importHost}. */
    private static final class HostBuffer implements DeviceBuffer {
        private final Arena arena;
        private final MemorySegment segment;
        private final java.util.concurrent.atomic.AtomicBoolean freed = new java.util.concurrent.atomic.AtomicBoolean();

        HostBuffer(Arena arena, MemorySegment segment) {
            this.arena = arena;
            this.segment = segment;
        }

        boolean release() {
            if (arena == null || !freed.compareAndSet(false, true)) {
                return false;
            }
            arena.close();
            return true;
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
