package aether.device.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;

import aether.device.spi.CompletionEvent;
import aether.device.spi.Device;
import aether.device.spi.DeviceBuffer;
import aether.device.spi.DeviceCapabilities;
import aether.device.spi.DeviceMemoryException;
import aether.device.spi.ResidentBuffers;
import aether.device.spi.SegmentExecutionException;
import aether.runtime.protocol.DeviceKind;
import aether.runtime.protocol.SegmentSpec;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;

/**
 * A CUDA GPU as a {@link Device}: explicit device memory booked against the card's memory (less a reserve for the
 * driver), uploads and downloads, and completion events. All driver work runs on the device's own thread (the context
 * is current there), so the SPI's methods never block on device work except {@link #allocate}/{@link #free}, which
 * wait for the (fast) allocation call.
 *
 * <p>Scheduler segments: {@link #submit} lowers the segment's graph ({@link SegmentLowering}) and enqueues its kernels
 * ({@code segment_kernels.cu}) on the stream, then records a CUDA event; a waiter thread (not the device thread, not an
 * actor's) waits for the event and completes the segment's {@link CompletionEvent}. {@link #capabilities()} lists
 * exactly the op kinds the lowering handles ({@link SegmentLowering#OPS}) and f32 values only, so the scheduler places
 * a segment here only when the GPU can run all of it. Intermediates live in one scratch area that grows on demand and
 * is reused by every segment (work on the one stream is ordered, so a segment's kernels never overlap the previous
 * one's); it is booked against the same budget as {@link #allocate}. The LLM path drives {@link CudaKernels} directly
 * (llm-service {@code aether.llm.engine.cuda}).
 *
 * <p>Residency: {@link #residency()} keeps the device copies of runtime buffers between segments (a segment's outputs,
 * and inputs it uploaded that the memory manager booked here), so a later segment on this GPU that reads one skips its
 * upload ({@link #uploadsDone()}, {@link #uploadsSkipped()}). The worker still copies every output back to host memory,
 * so a kept copy is never the only one and is freed whenever the memory manager evicts it or the tensor is released.
 */
public final class CudaDevice implements Device {

    /** Memory left to the driver and other processes: the budget is total memory minus this. */
    static final long RESERVE_BYTES = 512L << 20;

    private final CudaContext cuda;
    private final DeviceCapabilities capabilities;
    private final ExecutorService thread;
    /** The one thread of {@link #thread}, on which the context is current. */
    private final Thread deviceThread;
    private final AtomicLong allocated = new AtomicLong();
    private final String name;
    /** Waits for segments' CUDA events, in submission order (the stream finishes them in that order too). */
    private final ExecutorService waiter;
    private final SegmentLauncher launcher;
    /** Device copies of runtime buffers kept between segments; frees on the device thread, never waiting for it. */
    private final ResidentBuffers residency;
    private final AtomicLong uploads = new AtomicLong();
    /** The segments' scratch area (device thread only); null until a segment needs one. */
    private CudaBuffer scratch;

    private CudaDevice(CudaContext cuda, ExecutorService thread, Thread deviceThread) {
        this.cuda = cuda;
        this.thread = thread;
        this.deviceThread = deviceThread;
        this.name = "cuda-" + cuda.ordinal() + " (" + cuda.name() + ")";
        this.capabilities = capabilities(cuda.ordinal(), cuda.totalMemory());
        this.launcher = new SegmentLauncher(cuda);
        this.residency = new ResidentBuffers(name, this::freeSoon);
        this.waiter = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "aether-cuda-" + cuda.ordinal() + "-events");
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * What a CUDA device of {@code totalMemory} bytes advertises: its memory less {@link #RESERVE_BYTES}, one segment
     * at a time (one stream), exactly the op kinds of {@link SegmentLowering#OPS}, f32 values, and no weight block
     * types (quantized matmul stays on the CPU worker; the LLM path has its own GPU kernels).
     */
    public static DeviceCapabilities capabilities(int ordinal, long totalMemory) {
        return new DeviceCapabilities(DeviceKind.CUDA, ordinal, Math.max(0, totalMemory - RESERVE_BYTES), 1,
                SegmentLowering.OPS, Set.of(GgmlType.F32), Set.of());
    }

    /**
     * Opens CUDA device {@code ordinal} on a new device thread.
     *
     * @throws CudaException when CUDA is unavailable (the message is {@code CUDA unavailable: <reason>}) or the device
     *                       cannot be opened
     */
    public static CudaDevice open(int ordinal) {
        ExecutorService thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "aether-cuda-" + ordinal);
            t.setDaemon(true);
            return t;
        });
        try {
            Thread[] self = new Thread[1];
            CudaContext cuda = thread.submit(() -> {
                self[0] = Thread.currentThread();
                CudaContext c = CudaContext.open(ordinal);
                try {
                    c.preload(SegmentLauncher.KERNELS);   // not lazily inside a segment; a missing one fails here
                } catch (RuntimeException e) {
                    c.close();
                    throw e;
                }
                return c;
            }).get();
            return new CudaDevice(cuda, thread, self[0]);
        } catch (java.util.concurrent.ExecutionException e) {
            thread.shutdownNow();
            throw e.getCause() instanceof RuntimeException r ? r : new CudaException(e.getCause().toString(), 0);
        } catch (InterruptedException e) {
            thread.shutdownNow();
            Thread.currentThread().interrupt();
            throw new CudaException("interrupted while opening CUDA device " + ordinal, 0);
        }
    }

    /**
     * Runs {@code work} on the device thread and waits for it (driver calls that return at once). Called on the device
     * thread itself (a continuation of an upload's or download's event frees a buffer) it runs at once: waiting for a
     * task queued behind itself would never end.
     */
    public <T> T call(Supplier<T> work) {
        if (Thread.currentThread() == deviceThread) {
            return work.get();
        }
        try {
            return CompletableFuture.supplyAsync(work, thread).join();
        } catch (java.util.concurrent.CompletionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : e;
        } catch (RejectedExecutionException e) {
            throw new IllegalStateException(name + " is closed", e);
        }
    }

    /** The context, for code that runs on the device thread ({@link #call}). */
    public CudaContext context() {
        return cuda;
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
        try {
            // cuMemAlloc refuses 0 bytes: a 0-byte buffer gets a minimal allocation that nothing reads
            long real = Math.max(1, byteSize);
            return new CudaBuffer(call(() -> cuda.alloc(real)), byteSize, cuda.ordinal());
        } catch (RuntimeException e) {
            allocated.addAndGet(-byteSize);
            throw e;
        }
    }

    @Override
    public DeviceBuffer importHost(MemorySegment host) {
        return null;  // no zero-copy host access in this increment: allocate and upload
    }

    private CudaBuffer own(DeviceBuffer b, String role) {
        if (!(b instanceof CudaBuffer c) || c.isFreed()
                || !(c.location() instanceof aether.runtime.protocol.Location.Device d) || d.ordinal() != cuda.ordinal()) {
            throw new IllegalArgumentException(name + ": " + role + " is not a live buffer of this device");
        }
        return c;
    }

    private CompletionEvent async(String what, Runnable work) {
        CompletionEvent event = new CompletionEvent();
        try {
            thread.execute(() -> {
                if (!event.start()) {
                    return;
                }
                try {
                    work.run();
                    cuda.synchronize();
                    event.complete();
                } catch (RuntimeException e) {
                    event.fail(new CudaException(name + ": " + what + ": " + e.getMessage(), 0));
                }
            });
        } catch (RejectedExecutionException e) {
            event.fail(new IllegalStateException(name + " is closed"));
        }
        return event;
    }

    @Override
    public CompletionEvent upload(MemorySegment src, DeviceBuffer dst) {
        CudaBuffer d = own(dst, "upload destination");
        if (src.byteSize() < d.byteSize()) {
            throw new IllegalArgumentException(name + ": upload of " + src.byteSize() + " bytes into a buffer of "
                    + d.byteSize() + " (expected at least the buffer's size)");
        }
        uploads.incrementAndGet();
        return async("upload", () -> cuda.upload(src.asSlice(0, d.byteSize()), d.pointer()));
    }

    @Override
    public CompletionEvent download(DeviceBuffer src, MemorySegment dst) {
        CudaBuffer s = own(src, "download source");
        if (dst.byteSize() < s.byteSize()) {
            throw new IllegalArgumentException(name + ": download of " + s.byteSize() + " bytes into host memory of "
                    + dst.byteSize() + " (expected at least the buffer's size)");
        }
        return async("download", () -> cuda.download(s.pointer(), dst.asSlice(0, s.byteSize())));
    }

    @Override
    public void free(DeviceBuffer buffer) {
        if (buffer instanceof CudaBuffer c && c.release()) {
            call(() -> {
                cuda.free(c.pointer(), Math.max(1, c.byteSize()));
                return null;
            });
            allocated.addAndGet(-c.byteSize());
        }
    }

    /**
     * Frees {@code buffer} without waiting for the device thread (an eviction arrives on an actor's thread while the
     * device thread may be waiting for the stream). No segment reads it any more: {@link ResidentBuffers} hands a copy
     * in use over only after its last use.
     */
    private void freeSoon(DeviceBuffer buffer) {
        if (Thread.currentThread() == deviceThread) {
            free(buffer);
            return;
        }
        try {
            thread.execute(() -> free(buffer));
        } catch (RejectedExecutionException e) {
            // closed: the context and all its memory are gone already
        }
    }

    @Override
    public ResidentBuffers residency() {
        return residency;
    }

    /** Host-to-device copies started ({@link #upload}) since the device opened. */
    public long uploadsDone() {
        return uploads.get();
    }

    /** Segment inputs read from a kept device copy instead of uploaded ({@link ResidentBuffers#hits()}). */
    public long uploadsSkipped() {
        return residency.hits();
    }

    @Override
    public CompletionEvent submit(SegmentSpec segment, List<DeviceBuffer> inputs, List<DeviceBuffer> outputs) {
        CompletionEvent event = new CompletionEvent();
        SegmentLowering.Plan plan;
        List<CUdeviceptr> in;
        List<CUdeviceptr> out;
        try {
            plan = SegmentLowering.lower(segment);
            in = pointers(segment, "input", inputs, segment.inputNodes());
            out = pointers(segment, "output", outputs, segment.graph().outputs());
        } catch (SegmentExecutionException e) {
            event.fail(e);
            return event;
        } catch (RuntimeException e) {
            event.fail(new SegmentExecutionException(-1, "", name + ": segment " + segment.index() + ": "
                    + e.getMessage(), e));
            return event;
        }
        try {
            thread.execute(() -> enqueue(segment, plan, in, out, event));
        } catch (RejectedExecutionException e) {
            event.fail(new SegmentExecutionException(-1, "", name + " is closed", e));
        }
        return event;
    }

    /** The device pointers of a segment's buffers, each checked to be this device's and of its value's size. */
    private List<CUdeviceptr> pointers(SegmentSpec segment, String role, List<DeviceBuffer> buffers,
            List<Integer> nodes) {
        if (buffers.size() != nodes.size()) {
            throw new IllegalArgumentException(buffers.size() + " " + role + "s given (expected: " + nodes.size()
                    + ")");
        }
        List<CUdeviceptr> pointers = new java.util.ArrayList<>(buffers.size());
        for (int i = 0; i < buffers.size(); i++) {
            CudaBuffer b = own(buffers.get(i), role + " " + i);
            long expected = aether.runtime.protocol.TensorBytes.byteSize(segment.graph().node(nodes.get(i)).type());
            if (b.byteSize() < expected) {
                throw new IllegalArgumentException(role + " " + i + " has " + b.byteSize() + " bytes (expected: "
                        + expected + " for node %" + nodes.get(i) + ")");
            }
            pointers.add(b.pointer());
        }
        return pointers;
    }

    /** On the device thread: enqueues the segment's work and an event; the waiter completes {@code event}. */
    private void enqueue(SegmentSpec segment, SegmentLowering.Plan plan, List<CUdeviceptr> in, List<CUdeviceptr> out,
            CompletionEvent event) {
        if (!event.start()) {
            return;   // cancelled while queued
        }
        CUevent done = new CUevent();
        try {
            CUdeviceptr area = scratch(plan.scratchBytes());
            launcher.enqueue(segment.index(), plan, in, out, area);
            cuda.bind();
            CudaDriver.check(cuEventCreate(done, CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
            CudaDriver.check(cuEventRecord(done, cuda.stream()), "cuEventRecord");
        } catch (SegmentExecutionException e) {
            event.fail(e);
            return;
        } catch (RuntimeException e) {
            event.fail(new SegmentExecutionException(-1, "", name + ": segment " + segment.index() + ": "
                    + e.getMessage(), e));
            return;
        }
        try {
            waiter.execute(() -> await(segment, done, event));
        } catch (RejectedExecutionException e) {
            event.fail(new SegmentExecutionException(-1, "", name + " is closed", e));
        }
    }

    /** On the waiter thread: blocks on the segment's event (this thread only), then completes or fails it. */
    private void await(SegmentSpec segment, CUevent done, CompletionEvent event) {
        int r;
        try {
            cuda.bind();
            r = cuEventSynchronize(done);
            cuEventDestroy(done);
        } catch (RuntimeException e) {
            event.fail(new SegmentExecutionException(-1, "", name + ": segment " + segment.index() + ": " + e
                    .getMessage(), e));
            return;
        }
        if (r != jcuda.driver.CUresult.CUDA_SUCCESS) {
            // an asynchronous kernel fault: the context is unusable from here on, and which kernel it was is unknown
            event.fail(new SegmentExecutionException(-1, "", name + ": segment " + segment.index() + " failed on the"
                    + " GPU: " + jcuda.driver.CUresult.stringFor(r), null));
            return;
        }
        event.complete();
    }

    /** The scratch area, grown to at least {@code bytes} (device thread only; booked against the budget). */
    private CUdeviceptr scratch(long bytes) {
        if (scratch != null && scratch.byteSize() >= bytes) {
            return scratch.pointer();
        }
        long size = Math.max(bytes, scratch == null ? 1L << 20 : 2 * scratch.byteSize());
        if (scratch != null) {
            cuda.synchronize();   // earlier segments may still read the old area
            CudaBuffer old = scratch;
            scratch = null;
            if (old.release()) {
                cuda.free(old.pointer(), old.byteSize());
                allocated.addAndGet(-old.byteSize());
            }
        }
        long budget = capabilities.memoryBytes();
        long now;
        do {
            now = allocated.get();
            if (now + size > budget) {
                if (now + bytes > budget) {
                    throw new DeviceMemoryException(name + " (segment scratch)", bytes, now, budget);
                }
                size = bytes;
            }
        } while (!allocated.compareAndSet(now, now + size));
        try {
            scratch = new CudaBuffer(cuda.alloc(size), size, cuda.ordinal());
        } catch (RuntimeException e) {
            allocated.addAndGet(-size);
            throw e;
        }
        return scratch.pointer();
    }

    /** Bytes of the segments' scratch area now (0 before the first segment). */
    public long scratchBytes() {
        return call(() -> scratch == null ? 0L : scratch.byteSize());
    }

    @Override
    public long allocatedBytes() {
        return allocated.get();
    }

    @Override
    public void close() {
        residency.clear();   // queued on the device thread before the context closes
        waiter.shutdown();   // segments already enqueued still complete: their events fire as the stream drains
        try {
            waiter.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            call(() -> {
                if (scratch != null && scratch.release()) {
                    cuda.free(scratch.pointer(), scratch.byteSize());
                    allocated.addAndGet(-scratch.byteSize());
                }
                cuda.close();
                return null;
            });
        } finally {
            thread.shutdown();
            try {
                thread.awaitTermination(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public String toString() {
        return name;
    }
}
