package aether.device.cuda;

import aether.device.spi.CompletionEvent;
import aether.device.spi.Device;
import aether.device.spi.DeviceBuffer;
import aether.device.spi.DeviceCapabilities;
import aether.device.spi.DeviceMemoryException;
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

/**
 * A CUDA GPU as a {@link Device}: explicit device memory booked against the card's memory (less a reserve for the
 * driver), uploads and downloads, and completion events. All driver work runs on the device's own thread (the context
 * is current there), so the SPI's methods never block on device work except {@link #allocate}/{@link #free}, which
 * wait for the (fast) allocation call.
 *
 * <p>This increment runs no scheduler segments: the LLM decode path drives {@link CudaKernels} directly (see
 * llm-service {@code aether.llm.engine.cuda}); {@link #capabilities()} therefore lists no op kinds, so the scheduler
 * never places a segment here, and {@link #submit} fails with a message saying so.
 */
public final class CudaDevice implements Device {

    /** Memory left to the driver and other processes: the budget is total memory minus this. */
    static final long RESERVE_BYTES = 512L << 20;

    private final CudaContext cuda;
    private final DeviceCapabilities capabilities;
    private final ExecutorService thread;
    private final AtomicLong allocated = new AtomicLong();
    private final String name;

    private CudaDevice(CudaContext cuda, ExecutorService thread) {
        this.cuda = cuda;
        this.thread = thread;
        this.name = "cuda-" + cuda.ordinal() + " (" + cuda.name() + ")";
        this.capabilities = new DeviceCapabilities(DeviceKind.CUDA, cuda.ordinal(),
                Math.max(0, cuda.totalMemory() - RESERVE_BYTES), 1, Set.of(),
                Set.of(GgmlType.F32, GgmlType.F16), Set.of(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.F16));
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
            CudaContext cuda = thread.submit(() -> CudaContext.open(ordinal)).get();
            return new CudaDevice(cuda, thread);
        } catch (java.util.concurrent.ExecutionException e) {
            thread.shutdownNow();
            throw e.getCause() instanceof RuntimeException r ? r : new CudaException(e.getCause().toString(), 0);
        } catch (InterruptedException e) {
            thread.shutdownNow();
            Thread.currentThread().interrupt();
            throw new CudaException("interrupted while opening CUDA device " + ordinal, 0);
        }
    }

    /** Runs {@code work} on the device thread and waits for it (driver calls that return at once). */
    public <T> T call(Supplier<T> work) {
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

    @Override
    public CompletionEvent submit(SegmentSpec segment, List<DeviceBuffer> inputs, List<DeviceBuffer> outputs) {
        CompletionEvent event = new CompletionEvent();
        event.fail(new SegmentExecutionException(-1, "", name + " runs no scheduler segments yet (it advertises no op "
                + "kinds; the CUDA LLM path drives its kernels directly)", null));
        return event;
    }

    @Override
    public long allocatedBytes() {
        return allocated.get();
    }

    @Override
    public void close() {
        try {
            call(() -> {
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
