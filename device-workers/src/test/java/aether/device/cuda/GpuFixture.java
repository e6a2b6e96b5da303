package aether.device.cuda;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The CUDA context of a GPU test class and the device buffers its tests allocate, as a JUnit extension:
 *
 * <pre>{@code @RegisterExtension static final GpuFixture gpu = new GpuFixture();}</pre>
 *
 * <p>Before the class: opens device 0 and loads the kernels, where CUDA is available (else nothing: each test is then
 * skipped before it starts, with the reason). After the class: closes the context. Every buffer allocated through
 * the fixture during a test is freed after it, in allocation order, so a failing assertion leaks nothing into the next
 * test; {@link #freeAfterTest} adds the release of anything else (scratch, counters, row kernels).
 *
 * <p>Outputs are meant to be poisoned before a launch (NaN floats, NaN halves, NaN q8_1 scales), so an output the
 * kernel left unwritten fails its comparison rather than passing on the zeros of a fresh allocation.
 *
 * <p>Public: llm-service's GPU tests use it through device-workers' test jar.
 */
public final class GpuFixture implements BeforeAllCallback, AfterAllCallback, BeforeEachCallback, AfterEachCallback {

    private CudaContext cuda;
    private CudaKernels kernels;
    private CudaPrefill prefill;
    private final List<Runnable> frees = new ArrayList<>();

    @Override
    public void beforeAll(ExtensionContext context) {
        if (CudaDriver.availability().available()) {
            cuda = CudaContext.open(0);
            kernels = new CudaKernels(cuda);
        }
    }

    @Override
    public void afterAll(ExtensionContext context) {
        if (cuda != null) {
            cuda.close();
            cuda = null;
            kernels = null;
            prefill = null;
        }
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        assumeGpu();
    }

    @Override
    public void afterEach(ExtensionContext context) {
        if (cuda != null) {
            frees.forEach(Runnable::run);
            frees.clear();
        }
    }

    /** Skips the calling test (with the reason) when this host has no usable CUDA device. */
    public static void assumeGpu() {
        CudaDriver.Availability a = CudaDriver.availability();
        assumeTrue(a.available(), () -> "GPU test skipped: CUDA " + a.describe());
    }

    /** Whether the context is open (false without a device: tests are skipped then). */
    public boolean available() {
        return cuda != null;
    }

    public CudaContext cuda() {
        return cuda;
    }

    public CudaKernels kernels() {
        return kernels;
    }

    /** The prefill launchers over {@link #kernels()}, made on first use and kept for the class. */
    public CudaPrefill prefill() {
        if (prefill == null) {
            prefill = new CudaPrefill(kernels);
        }
        return prefill;
    }

    /** Runs {@code free} after the current test, after the buffers allocated before this call. */
    public void freeAfterTest(Runnable free) {
        frees.add(free);
    }

    /** {@code resource}, released by {@code free} after the current test (in allocation order). */
    public <T> T freeAfterTest(T resource, Consumer<T> free) {
        frees.add(() -> free.accept(resource));
        return resource;
    }

    /** {@code bytes} of device memory, uninitialized, freed after the test. */
    public CUdeviceptr alloc(long bytes) {
        return freeAfterTest(cuda.alloc(bytes), p -> cuda.free(p, bytes));
    }

    public CUdeviceptr upload(float[] v) {
        CUdeviceptr p = alloc((long) v.length * 4);
        cuda.upload(v, p);
        return p;
    }

    public CUdeviceptr upload(int[] v) {
        CUdeviceptr p = alloc((long) v.length * 4);
        cuda.upload(v, p);
        return p;
    }

    /** The bytes of {@code seg} (e.g. an f16 KV cache laid out on the host). */
    public CUdeviceptr upload(MemorySegment seg) {
        CUdeviceptr p = alloc(seg.byteSize());
        cuda.upload(seg, p);
        return p;
    }

    /** {@code floats} floats, each a quiet NaN. */
    public CUdeviceptr poisoned(int floats) {
        CUdeviceptr p = alloc((long) floats * 4);
        cuda.fill32(p, GpuTests.NAN_BITS, floats);
        return p;
    }

    /** {@code count} f16 values, uninitialized. */
    public CUdeviceptr halves(long count) {
        return alloc(count * 2);
    }

    /** {@code count} f16 values, each an f16 NaN (all bits set). */
    public CUdeviceptr poisonedHalves(long count) {
        CUdeviceptr p = alloc(count * 2);
        cuda.fill8(p, (byte) 0xFF, count * 2);
        return p;
    }

    /** A q8_1 vector of {@code n} values, uninitialized. */
    public QuantizedVector quantized(int n) {
        return freeAfterTest(QuantizedVector.allocate(cuda, n), q -> q.free(cuda));
    }

    /** Fills {@code q} with quants 0x55 and NaN scales, so a block the kernel did not write fails the check. */
    public QuantizedVector poison(QuantizedVector q) {
        cuda.fill8(q.quants(), (byte) 0x55, q.length());
        cuda.fill32(q.scales(), GpuTests.NAN_BITS, q.length() / 16);
        return q;
    }

    /** The stored weights {@code raw} ({@code type} blocks, rows x cols) on the device. */
    public GpuMatrix matrix(GgmlType type, int rows, int cols, MemorySegment raw) {
        return freeAfterTest(GpuMatrix.upload(cuda, type, rows, cols, raw, null), m -> m.free(cuda));
    }

    public float[] download(CUdeviceptr p, int n) {
        float[] out = new float[n];
        cuda.download(p, out);
        return out;
    }

    /** {@code n} f16 values from the device, widened to float. */
    public float[] downloadHalves(CUdeviceptr p, int n) {
        byte[] b = new byte[n * 2];
        cuda.download(p, b);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = GpuTests.half(b, i);
        }
        return out;
    }
}
