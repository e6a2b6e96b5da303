package aether.scheduler.cuda;

import aether.device.cuda.CudaDevice;
import aether.device.cuda.SegmentLowering;
import aether.device.spi.CompletionEvent;
import aether.device.spi.Device;
import aether.device.spi.DeviceBuffer;
import aether.device.spi.DeviceCapabilities;
import aether.device.spi.DeviceMemoryException;
import aether.device.spi.ResidentBuffers;
import aether.device.spi.SegmentExecutionException;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.SegmentSpec;
import aether.runtime.protocol.WorkerCapabilities;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A stand-in for a {@link CudaDevice} where there is no GPU: it advertises exactly what a CUDA device advertises
 * ({@link CudaDevice#capabilities}), its buffers have no host view (like device memory: the worker must upload and
 * download), and it runs a segment the way the CUDA device does — {@link SegmentLowering#lower}, refusing what the GPU
 * would refuse — but executes the launches with the {@link KernelEmulator}, on a thread of its own. Like the CUDA
 * device it keeps device copies between segments ({@link #residency()}) and counts its uploads.
 */
final class EmulatedGpu implements Device {

    private final DeviceCapabilities capabilities;
    private final ExecutorService thread = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "emulated-gpu");
        t.setDaemon(true);
        return t;
    });
    private final AtomicLong allocated = new AtomicLong();
    final AtomicInteger segments = new AtomicInteger();
    final Set<String> opKinds = new ConcurrentSkipListSet<>();
    final AtomicInteger uploads = new AtomicInteger();
    private final ResidentBuffers residency = new ResidentBuffers("emulated gpu", this::free);

    private final boolean keepsCopies;

    EmulatedGpu(int ordinal, long memoryBytes) {
        this(ordinal, memoryBytes, true);
    }

    /** @param keepsCopies false: no {@link #residency()}, every input is uploaded for every segment */
    EmulatedGpu(int ordinal, long memoryBytes, boolean keepsCopies) {
        this.capabilities = CudaDevice.capabilities(ordinal, memoryBytes + (512L << 20));
        this.keepsCopies = keepsCopies;
    }

    /** Device memory: bytes the worker cannot see. */
    private final class Buffer implements DeviceBuffer {
        final MemorySegment bytes;
        boolean freed;

        Buffer(long size) {
            this.bytes = Arena.ofAuto().allocate(Math.max(size, 1), 64).asSlice(0, size);
        }

        @Override
        public long byteSize() {
            return bytes.byteSize();
        }

        @Override
        public Location location() {
            return Location.device(capabilities.ordinal());
        }

        @Override
        public MemorySegment host() {
            return null;
        }
    }

    @Override
    public DeviceCapabilities capabilities() {
        return capabilities;
    }

    @Override
    public DeviceBuffer allocate(long byteSize) {
        long now = allocated.addAndGet(byteSize);
        if (now > capabilities.memoryBytes()) {
            allocated.addAndGet(-byteSize);
            throw new DeviceMemoryException("emulated gpu", byteSize, now - byteSize, capabilities.memoryBytes());
        }
        return new Buffer(byteSize);
    }

    @Override
    public DeviceBuffer importHost(MemorySegment host) {
        return null;
    }

    @Override
    public CompletionEvent upload(MemorySegment src, DeviceBuffer dst) {
        uploads.incrementAndGet();
        return async(() -> MemorySegment.copy(src, 0, ((Buffer) dst).bytes, 0, dst.byteSize()));
    }

    @Override
    public CompletionEvent download(DeviceBuffer src, MemorySegment dst) {
        return async(() -> MemorySegment.copy(((Buffer) src).bytes, 0, dst, 0, src.byteSize()));
    }

    private CompletionEvent async(Runnable work) {
        CompletionEvent e = new CompletionEvent();
        thread.execute(() -> {
            if (e.start()) {
                work.run();
                e.complete();
            }
        });
        return e;
    }

    @Override
    public synchronized void free(DeviceBuffer buffer) {
        if (buffer instanceof Buffer b && !b.freed) {
            b.freed = true;
            allocated.addAndGet(-b.byteSize());
        }
    }

    @Override
    public CompletionEvent submit(SegmentSpec segment, List<DeviceBuffer> inputs, List<DeviceBuffer> outputs) {
        CompletionEvent event = new CompletionEvent();
        SegmentLowering.Plan plan;
        try {
            plan = SegmentLowering.lower(segment);
        } catch (SegmentExecutionException e) {
            event.fail(e);
            return event;
        }
        thread.execute(() -> {
            if (!event.start()) {
                return;
            }
            for (DeviceBuffer b : inputs) {
                if (((Buffer) b).freed) {   // what a GPU would read as garbage: a kept copy freed while in use
                    event.fail(new SegmentExecutionException(-1, "", "emulated gpu: segment " + segment.index()
                            + " reads a freed buffer", null));
                    return;
                }
            }
            List<float[]> in = new ArrayList<>();
            for (DeviceBuffer b : inputs) {
                in.add(((Buffer) b).bytes.toArray(ValueLayout.JAVA_FLOAT));
            }
            List<float[]> out = new ArrayList<>();
            for (DeviceBuffer b : outputs) {
                out.add(new float[(int) (b.byteSize() / 4)]);
            }
            KernelEmulator.run(plan, in, out);
            for (int i = 0; i < out.size(); i++) {
                MemorySegment.copy(out.get(i), 0, ((Buffer) outputs.get(i)).bytes, ValueLayout.JAVA_FLOAT, 0,
                        out.get(i).length);
            }
            segment.graph().nodes().forEach(n -> opKinds.add(WorkerCapabilities.opKind(n.op())));
            segments.incrementAndGet();
            event.complete();
        });
        return event;
    }

    @Override
    public ResidentBuffers residency() {
        return keepsCopies ? residency : null;
    }

    @Override
    public long allocatedBytes() {
        return allocated.get();
    }

    @Override
    public void close() {
        thread.shutdownNow();
    }
}
