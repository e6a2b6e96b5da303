package aether.device.cuda;

import static aether.device.cuda.CudaDriver.check;
import static jcuda.driver.JCudaDriver.*;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;

/**
 * One CUDA device driven through JCuda's driver API: its primary context, one stream that all work goes on, the module
 * of Aether's kernels (the fatbin resource, {@link KernelImage}), device memory, copies, events, kernel launches and
 * stream capture into CUDA graphs. Every driver return code is checked ({@link CudaDriver#check}).
 *
 * <p>Threads: each public method makes the context current on the calling thread first, so any one thread at a time
 * may use it; it is not safe for concurrent use (callers serialize, e.g. {@link CudaDevice}'s own thread).
 */
public final class CudaContext implements AutoCloseable {

    /** Copies from host memory go through direct buffers of at most this many bytes. */
    private static final long COPY_CHUNK = 1L << 30;
    /** {@code -Daether.cuda.pdl=false} launches without programmatic dependent launch (see {@link #programmaticLaunch}). */
    private static final boolean PDL = Boolean.parseBoolean(System.getProperty("aether.cuda.pdl", "true"));

    private final int ordinal;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final CUstream stream = new CUstream();
    private final CUmodule module = new CUmodule();
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final String name;
    private final long totalMemory;
    private final int multiprocessors;
    private final int l2Bytes;
    private final int computeCapability;
    private long allocated;
    private boolean closed;
    /** The profile eager launches are timed into, if any ({@link #profiled}); launches during a capture are not. */
    private KernelProfile profile;
    private boolean capturing;
    /**
     * Whether kernels launch with programmatic dependent launch ({@link ProgrammaticLaunch}): on compute capability
     * 9.0+ unless {@code -Daether.cuda.pdl=false}, and where libcuda has cuLaunchKernelEx.
     */
    private final boolean programmaticLaunch;
    private boolean programmaticLaunchSuspended;

    private CudaContext(int ordinal) {
        this.ordinal = ordinal;
        check(cuDeviceGet(device, ordinal), "cuDeviceGet(" + ordinal + ")");
        byte[] nameBytes = new byte[256];
        check(cuDeviceGetName(nameBytes, nameBytes.length, device), "cuDeviceGetName");
        int len = 0;
        while (len < nameBytes.length && nameBytes[len] != 0) {
            len++;
        }
        this.name = new String(nameBytes, 0, len, java.nio.charset.StandardCharsets.US_ASCII);
        long[] total = new long[1];
        check(cuDeviceTotalMem(total, device), "cuDeviceTotalMem");
        this.totalMemory = total[0];
        this.multiprocessors = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        this.l2Bytes = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
        this.computeCapability = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) * 10
                + attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        this.programmaticLaunch = computeCapability >= 90 && PDL && ProgrammaticLaunch.unavailable() == null;
        check(cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain");
        try {
            bind();
            check(cuStreamCreate(stream, 0), "cuStreamCreate");
            byte[] image = KernelImage.load().orElseThrow(() -> new CudaException(
                    "no kernel fatbin in this build (" + KernelImage.RESOURCE + "): it was built without nvcc", 0));
            check(cuModuleLoadData(module, image), "cuModuleLoadData(" + KernelImage.RESOURCE + ", "
                    + image.length + " bytes) on " + name + " (compute capability " + computeCapability + ")");
        } catch (RuntimeException e) {
            cuDevicePrimaryCtxRelease(device);
            throw e;
        }
    }

    /**
     * Opens device {@code ordinal}.
     *
     * @throws CudaException when CUDA is unavailable ({@link CudaDriver#availability()}) or a driver call fails
     */
    public static CudaContext open(int ordinal) {
        CudaDriver.Availability a = CudaDriver.availability();
        if (!a.available()) {
            throw new CudaException("CUDA " + a.describe(), 0);
        }
        if (ordinal < 0 || ordinal >= a.deviceCount()) {
            throw new CudaException("CUDA device " + ordinal + " (expected 0.." + (a.deviceCount() - 1) + ")", 0);
        }
        return new CudaContext(ordinal);
    }

    private int attribute(int attribute) {
        int[] v = new int[1];
        check(cuDeviceGetAttribute(v, attribute, device), "cuDeviceGetAttribute(" + attribute + ")");
        return v[0];
    }

    /** Makes this context current on the calling thread. */
    public void bind() {
        if (closed) {
            throw new IllegalStateException("CUDA context of device " + ordinal + " is closed");
        }
        check(cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    public int ordinal() {
        return ordinal;
    }

    public String name() {
        return name;
    }

    public long totalMemory() {
        return totalMemory;
    }

    public int multiprocessors() {
        return multiprocessors;
    }

    public int l2Bytes() {
        return l2Bytes;
    }

    /** Major * 10 + minor, e.g. 90 for an H100. */
    /** Runs {@code work} with its launches made without programmatic dependent launch (ordinary stream order). */
    public void withoutProgrammaticLaunch(Runnable work) {
        boolean outer = programmaticLaunchSuspended;
        programmaticLaunchSuspended = true;
        try {
            work.run();
        } finally {
            programmaticLaunchSuspended = outer;
        }
    }

    /** Whether kernels launch with programmatic dependent launch here (Hopper and later, unless turned off). */
    public boolean programmaticLaunch() {
        return programmaticLaunch;
    }

    public int computeCapability() {
        return computeCapability;
    }

    public CUstream stream() {
        return stream;
    }

    /** Bytes this context has allocated and not freed. */
    public long allocatedBytes() {
        return allocated;
    }

    /** Bytes free on the device now (the driver's view, other processes included). */
    public long freeMemory() {
        bind();
        long[] free = new long[1];
        long[] total = new long[1];
        check(cuMemGetInfo(free, total), "cuMemGetInfo");
        return free[0];
    }

    // ---- memory ----------------------------------------------------------------------------------------------------

    public CUdeviceptr alloc(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("device allocation of " + bytes + " bytes (expected 1+)");
        }
        bind();
        CUdeviceptr p = new CUdeviceptr();
        check(cuMemAlloc(p, bytes), "cuMemAlloc(" + bytes + " bytes) on " + name + " (" + allocated
                + " bytes allocated by Aether)");
        allocated += bytes;
        return p;
    }

    public void free(CUdeviceptr p, long bytes) {
        bind();
        check(cuMemFree(p), "cuMemFree");
        allocated -= bytes;
    }

    /** Copies {@code src} (host memory of any size; a mapped file too) to {@code dst}; returns when done. */
    public void upload(MemorySegment src, CUdeviceptr dst) {
        bind();
        long n = src.byteSize();
        for (long off = 0; off < n; off += COPY_CHUNK) {
            long len = Math.min(COPY_CHUNK, n - off);
            check(cuMemcpyHtoD(dst.withByteOffset(off), host(src.asSlice(off, len)), len),
                    "cuMemcpyHtoD(" + len + " bytes at offset " + off + ")");
        }
    }

    public void upload(float[] src, CUdeviceptr dst) {
        bind();
        check(cuMemcpyHtoD(dst, Pointer.to(src), (long) src.length * Float.BYTES), "cuMemcpyHtoD(float[" + src.length + "])");
    }

    public void upload(int[] src, CUdeviceptr dst) {
        bind();
        check(cuMemcpyHtoD(dst, Pointer.to(src), (long) src.length * Integer.BYTES), "cuMemcpyHtoD(int[" + src.length + "])");
    }

    public void upload(byte[] src, CUdeviceptr dst) {
        bind();
        check(cuMemcpyHtoD(dst, Pointer.to(src), src.length), "cuMemcpyHtoD(byte[" + src.length + "])");
    }

    /**
     * Page-locks native host memory {@code seg} for this context, so copies to and from it run at full PCIe speed
     * instead of through the driver's staging buffer (an 8 MB logits download of 64 rows: ~3x faster). Undo with
     * {@link #unpin} before the memory is freed.
     */
    public void pin(MemorySegment seg) {
        bind();
        if (!seg.isNative()) {
            throw new IllegalArgumentException("only native memory can be page-locked, got a heap segment");
        }
        check(cuMemHostRegister(Pointer.to(seg.asByteBuffer()), seg.byteSize(), 0),
                "cuMemHostRegister(" + seg.byteSize() + " bytes)");
    }

    /** Undoes {@link #pin}. */
    public void unpin(MemorySegment seg) {
        bind();
        check(cuMemHostUnregister(Pointer.to(seg.asByteBuffer())), "cuMemHostUnregister");
    }

    /** Copies {@code dst.byteSize()} bytes of {@code src} into host memory {@code dst}; returns when done. */
    public void download(CUdeviceptr src, MemorySegment dst) {
        bind();
        long n = dst.byteSize();
        for (long off = 0; off < n; off += COPY_CHUNK) {
            long len = Math.min(COPY_CHUNK, n - off);
            MemorySegment part = dst.asSlice(off, len);
            if (part.isNative()) {
                check(cuMemcpyDtoH(Pointer.to(part.asByteBuffer()), src.withByteOffset(off), len), "cuMemcpyDtoH");
            } else {
                byte[] tmp = new byte[(int) len];
                check(cuMemcpyDtoH(Pointer.to(tmp), src.withByteOffset(off), len), "cuMemcpyDtoH");
                MemorySegment.copy(MemorySegment.ofArray(tmp), 0, part, 0, len);
            }
        }
    }

    /** Waits for the stream, then copies {@code dst.length} floats of {@code src}. */
    public void download(CUdeviceptr src, float[] dst) {
        bind();
        check(cuStreamSynchronize(stream), "cuStreamSynchronize");
        check(cuMemcpyDtoH(Pointer.to(dst), src, (long) dst.length * Float.BYTES), "cuMemcpyDtoH(float[" + dst.length + "])");
    }

    public void download(CUdeviceptr src, int[] dst) {
        bind();
        check(cuStreamSynchronize(stream), "cuStreamSynchronize");
        check(cuMemcpyDtoH(Pointer.to(dst), src, (long) dst.length * Integer.BYTES), "cuMemcpyDtoH(int[" + dst.length + "])");
    }

    public void download(CUdeviceptr src, byte[] dst) {
        bind();
        check(cuStreamSynchronize(stream), "cuStreamSynchronize");
        check(cuMemcpyDtoH(Pointer.to(dst), src, dst.length), "cuMemcpyDtoH(byte[" + dst.length + "])");
    }

    /** Waits for the stream, then copies the first {@code count} ints of {@code dst} from {@code src}. */
    public void download(CUdeviceptr src, int[] dst, int count) {
        java.util.Objects.checkFromIndexSize(0, count, dst.length);
        bind();
        check(cuStreamSynchronize(stream), "cuStreamSynchronize");
        check(cuMemcpyDtoH(Pointer.to(dst), src, (long) count * Integer.BYTES), "cuMemcpyDtoH(" + count + " ints)");
    }

    /** Stream-ordered copy of the first {@code count} ints of {@code src} from the Java heap. */
    public void uploadAsync(int[] src, int count, CUdeviceptr dst) {
        java.util.Objects.checkFromIndexSize(0, count, src.length);
        bind();
        check(cuMemcpyHtoDAsync(dst, Pointer.to(src), (long) count * Integer.BYTES, stream), "cuMemcpyHtoDAsync");
    }

    /** Stream-ordered copy of a few ints (per-token parameters) from the Java heap. */
    public void uploadAsync(int[] src, CUdeviceptr dst) {
        bind();
        check(cuMemcpyHtoDAsync(dst, Pointer.to(src), (long) src.length * Integer.BYTES, stream), "cuMemcpyHtoDAsync");
    }

    /** Stream-ordered device-to-device copy. */
    public void copyAsync(CUdeviceptr src, CUdeviceptr dst, long bytes) {
        bind();
        check(cuMemcpyDtoDAsync(dst, src, bytes, stream), "cuMemcpyDtoDAsync(" + bytes + " bytes)");
    }

    /** Fills {@code count} 32-bit words with {@code value} on the stream (e.g. NaN to poison an output). */
    public void fill32(CUdeviceptr p, int value, long count) {
        bind();
        check(cuMemsetD32Async(p, value, count, stream), "cuMemsetD32Async(" + count + " words)");
    }

    /** Fills {@code count} bytes with {@code value} on the stream. */
    public void fill8(CUdeviceptr p, byte value, long count) {
        bind();
        check(cuMemsetD8Async(p, value, count, stream), "cuMemsetD8Async(" + count + " bytes)");
    }

    public void synchronize() {
        bind();
        check(cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    // ---- kernels ---------------------------------------------------------------------------------------------------

    public CUfunction function(String kernel) {
        return functions.computeIfAbsent(kernel, k -> {
            bind();
            CUfunction f = new CUfunction();
            check(cuModuleGetFunction(f, module, k), "cuModuleGetFunction(" + k + ")");
            return f;
        });
    }

    /**
     * Loads the named kernels now (with CUDA's lazy module loading, a kernel is otherwise loaded at its first launch,
     * which must not happen inside a stream capture).
     */
    public void preload(String... kernels) {
        int[] v = new int[1];
        for (String k : kernels) {
            check(cuFuncGetAttribute(v, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, function(k)),
                    "cuFuncGetAttribute(" + k + ")");
        }
    }

    /** Raises {@code kernel}'s dynamic shared memory limit (needed above 48 KiB). */
    public void allowSharedMemory(String kernel, int bytes) {
        check(cuFuncSetAttribute(function(kernel), CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes), "cuFuncSetAttribute(" + kernel + ", max dynamic shared memory " + bytes + ")");
    }

    /**
     * Asks for the largest shared-memory carveout of the SM's L1/shared array when {@code kernel} runs (a hint): for
     * kernels whose blocks per SM are bounded by shared memory (the MMQ row GEMM needs 2 x 110 KB of the H100's 228).
     */
    public void preferSharedMemory(String kernel) {
        int carveout = CUfunction_attribute.CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT;
        check(cuFuncSetAttribute(function(kernel), carveout, 100),
                "cuFuncSetAttribute(" + kernel + ", shared memory carveout 100%)");
    }

    /**
     * Launches {@code kernel} on the stream. Arguments in the kernel's order: {@link CUdeviceptr} (null = a null
     * pointer), {@link Integer}, {@link Long}, {@link Float}.
     */
    public void launch(String kernel, int gridX, int gridY, int blockX, int sharedBytes, Object... args) {
        launch3(kernel, gridX, gridY, 1, blockX, sharedBytes, args);
    }

    /** {@link #launch} with a third grid dimension. */
    public void launch3(String kernel, int gridX, int gridY, int gridZ, int blockX, int sharedBytes, Object... args) {
        CUfunction f = function(kernel);
        bind();
        KernelProfile timed = capturing ? null : profile;
        if (timed != null) {
            timed.before(kernel);
        }
        boolean pdl = programmaticLaunch && !programmaticLaunchSuspended;
        int rc = pdl ? ProgrammaticLaunch.launch(f, stream, gridX, gridY, gridZ, blockX, sharedBytes, args, kernel)
                : cuLaunchKernel(f, gridX, gridY, gridZ, blockX, 1, 1, sharedBytes, stream, jcudaParams(kernel, args),
                        null);
        if (rc != 0) {   // the message only when it is needed: this runs for every eager launch
            check(rc, (pdl ? "cuLaunchKernelEx(" : "cuLaunchKernel(") + kernel + ", grid " + gridX + "x" + gridY + "x"
                    + gridZ + ", block " + blockX + (pdl ? ", programmatic stream serialization)" : ")"));
        }
        if (timed != null) {
            timed.after();
        }
    }

    /** The kernel arguments as JCuda's pointer-to-pointers ({@link #launch3}'s argument kinds). */
    private static Pointer jcudaParams(String kernel, Object[] args) {
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            params[i] = switch (args[i]) {
                case null -> Pointer.to(new CUdeviceptr());
                case CUdeviceptr p -> Pointer.to(p);
                case Integer v -> Pointer.to(new int[] {v});
                case Long v -> Pointer.to(new long[] {v});
                case Float v -> Pointer.to(new float[] {v});
                default -> throw new IllegalArgumentException("kernel " + kernel + " argument " + i + ": "
                        + args[i].getClass().getSimpleName() + " (expected CUdeviceptr, Integer, Long or Float)");
            };
        }
        return Pointer.to(params);
    }

    /** An empty kernel profile for {@link #profiled}; close it when done. */
    public KernelProfile newProfile() {
        bind();
        return new KernelProfile(stream);
    }

    /**
     * Runs {@code work} with every eager launch it makes timed by kernel into {@code p} (launches inside a stream
     * capture are not timed), as one pass of {@code p}. The kernels run back to back behind a short GPU-side wait, so
     * each one's time is its own, not the host's launch latency.
     */
    public void profiled(KernelProfile p, Runnable work) {
        // the pass queues behind a 20 ms wait on the GPU and then runs back to back, as a graph replay would; the
        // host enqueues a pass of a few hundred launches and their events in a few ms
        launch("spin_ns", 1, 1, 1, 0, 20_000_000L);
        KernelProfile outer = profile;
        profile = p;
        try {
            work.run();
        } finally {
            profile = outer;
        }
        p.endPass();
    }

    /** Fails with the first asynchronous error of the work on the stream so far, if any. */
    public void checkErrors(String after) {
        bind();
        check(cuStreamSynchronize(stream), "work on " + name + " after " + after);
    }

    // ---- events and graphs -----------------------------------------------------------------------------------------

    /** A timing event pair; {@link Timer#elapsedMillis()} waits for the second. */
    public final class Timer implements AutoCloseable {
        private final CUevent start = new CUevent();
        private final CUevent end = new CUevent();

        private Timer() {
            bind();
            check(cuEventCreate(start, 0), "cuEventCreate");
            check(cuEventCreate(end, 0), "cuEventCreate");
        }

        public void start() {
            bind();
            check(cuEventRecord(start, stream), "cuEventRecord");
        }

        public void stop() {
            bind();
            check(cuEventRecord(end, stream), "cuEventRecord");
        }

        public float elapsedMillis() {
            bind();
            check(cuEventSynchronize(end), "cuEventSynchronize");
            float[] ms = new float[1];
            check(cuEventElapsedTime(ms, start, end), "cuEventElapsedTime");
            return ms[0];
        }

        @Override
        public void close() {
            bind();
            cuEventDestroy(start);
            cuEventDestroy(end);
        }
    }

    public Timer timer() {
        return new Timer();
    }

    /** A captured sequence of stream work, replayed with {@link #launch()}. */
    public final class Graph implements AutoCloseable {
        private final CUgraph graph;
        private final CUgraphExec exec = new CUgraphExec();

        private Graph(CUgraph graph) {
            this.graph = graph;
            check(cuGraphInstantiate(exec, graph, 0), "cuGraphInstantiate");
        }

        public void launch() {
            bind();
            check(cuGraphLaunch(exec, stream), "cuGraphLaunch");
        }

        @Override
        public void close() {
            bind();
            cuGraphExecDestroy(exec);
            cuGraphDestroy(graph);
        }
    }

    /** Records what {@code work} enqueues on the stream (nothing runs) and returns it as an instantiated graph. */
    public Graph capture(Runnable work) {
        bind();
        check(cuStreamBeginCapture(stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                "cuStreamBeginCapture");
        CUgraph g = new CUgraph();
        capturing = true;
        try {
            work.run();
        } catch (RuntimeException e) {
            capturing = false;
            if (cuStreamEndCapture(stream, g) == 0) {
                cuGraphDestroy(g);
            }
            throw e;
        }
        capturing = false;
        check(cuStreamEndCapture(stream, g), "cuStreamEndCapture");
        return new Graph(g);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        bind();
        List<String> errors = new ArrayList<>();
        int r = cuStreamSynchronize(stream);
        if (r != 0) {
            errors.add("cuStreamSynchronize " + r);
        }
        cuModuleUnload(module);
        cuStreamDestroy(stream);
        closed = true;
        cuDevicePrimaryCtxRelease(device);
        if (!errors.isEmpty()) {
            throw new CudaException("closing CUDA device " + ordinal + ": " + errors, r);
        }
    }

    /** A host memory segment as a JCuda pointer: native memory directly, heap memory through its array. */
    private static Pointer host(MemorySegment s) {
        if (s.isNative()) {
            ByteBuffer bb = s.asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            return Pointer.to(bb);
        }
        return Pointer.to(s.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
    }
}
