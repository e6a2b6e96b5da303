package aether.scheduler.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import aether.device.cuda.CudaDevice;
import aether.device.cuda.CudaDriver;
import aether.device.spi.CompletionEvent;
import aether.device.spi.DeviceBuffer;
import aether.device.spi.SegmentExecutionException;
import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.TensorType;
import aether.runtime.protocol.SegmentSpec;
import aether.scheduler.exec.HostSegmentExecutor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;

/**
 * Every segment kernel on the GPU against the CPU worker ({@link HostSegmentExecutor}) on fresh random inputs (the seed
 * is printed): each case of {@link SegmentCases} — every op kind the CUDA device advertises, broadcasting, lengths that
 * are not multiples of the block and tile sizes — goes through {@link CudaDevice#submit} exactly as a worker sends it
 * (inputs uploaded, outputs poisoned with NaN first, then downloaded). Tolerance per case: |gpu - cpu| <= tol *
 * (|cpu| + scale), with tol 0 for pure data movement, 2e-6 for elementwise math (CUDA's expf/tanhf against Java's
 * double functions rounded to float), 1e-5..1e-4 for sums, matmuls and chains (f32 accumulation in another order).
 * Skipped, with the reason, where no CUDA device is present.
 */
@Tag("gpu")
@Timeout(300)
class CudaSegmentKernelsTest {

    private static final HostSegmentExecutor CPU = new HostSegmentExecutor();
    private static CudaDevice gpu;

    @BeforeAll
    static void open() {
        if (CudaDriver.availability().available()) {
            gpu = CudaDevice.open(0);
            System.out.println("GPU segment tests on " + gpu + ", budget " + (gpu.capabilities().memoryBytes() >> 20)
                    + " MiB");
        }
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
    }

    static void assumeGpu() {
        assumeTrue(gpu != null, () -> "GPU test skipped: CUDA " + CudaDriver.availability().describe());
    }

    /** Runs {@code segment} on the GPU as a device worker would and returns its outputs. */
    static List<float[]> runOnGpu(SegmentSpec segment, List<float[]> inputs) throws Exception {
        List<DeviceBuffer> in = new ArrayList<>();
        List<DeviceBuffer> out = new ArrayList<>();
        try {
            for (float[] v : inputs) {
                DeviceBuffer b = gpu.allocate(4L * v.length);
                in.add(b);
                gpu.upload(SegmentCases.segment(v), b);
            }
            List<MemorySegment> host = new ArrayList<>();
            for (int o : segment.graph().outputs()) {
                int n = (int) segment.graph().node(o).shape().size();
                DeviceBuffer b = gpu.allocate(4L * n);
                out.add(b);
                float[] nan = new float[n];
                java.util.Arrays.fill(nan, Float.NaN);
                gpu.upload(SegmentCases.segment(nan), b);   // an output the kernels do not write stays NaN
                host.add(Arena.ofAuto().allocate(Math.max(4L * n, 4), 64).asSlice(0, 4L * n));
            }
            CompletionEvent done = gpu.submit(segment, in, out);
            List<CompletionEvent> downloads = new ArrayList<>();
            for (int i = 0; i < out.size(); i++) {
                downloads.add(gpu.download(out.get(i), host.get(i)));
            }
            done.stage().toCompletableFuture().get(60, TimeUnit.SECONDS);
            for (CompletionEvent d : downloads) {
                d.stage().toCompletableFuture().get(60, TimeUnit.SECONDS);
            }
            return host.stream().map(s -> s.toArray(ValueLayout.JAVA_FLOAT)).toList();
        } finally {
            in.forEach(gpu::free);
            out.forEach(gpu::free);
        }
    }

    @TestFactory
    Stream<DynamicTest> everySegmentKernelEqualsTheCpuWorker() {
        assumeGpu();
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return SegmentCases.all(new SplittableRandom(seed)).stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
            List<float[]> gpuOut = runOnGpu(c.segment(), c.inputs());
            String wrong = SegmentCases.mismatch(c, gpuOut, c.cpu(CPU));
            assertThat(wrong).as("%s (seed %d)%n%s", c, seed, SegmentCases.dump(c)).isNull();
        }));
    }

    @Test
    void manySegmentsInFlightCompleteInOrderWithTheirOwnResults() throws Exception {
        assumeGpu();
        SplittableRandom r = new SplittableRandom(System.nanoTime());
        // 40 segments of growing size submitted back to back (the scratch area grows under running work)
        List<SegmentCases.Case> cases = new ArrayList<>();
        List<CompletionEvent> events = new ArrayList<>();
        List<List<DeviceBuffer>> buffers = new ArrayList<>();
        List<MemorySegment> results = new ArrayList<>();
        List<CompletionEvent> downloads = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            int n = 100 + 997 * i;
            OpGraph.Builder b = new OpGraph.Builder();
            int x = b.add(new aether.runtime.ir.Op.Input("x", TensorType.of(DType.F32, 3, n)));
            int y = b.add(new Op.RmsNorm(1e-6), b.add(new Op.Unary(Op.UnaryFn.SILU), x));
            int s = b.add(new Op.Reduce(Op.ReduceFn.SUM, 1, false), b.add(new Op.Binary(Op.BinaryFn.MUL), y, x));
            OpGraph g = b.build(List.of(s));
            float[] v = new float[3 * n];
            for (int j = 0; j < v.length; j++) {
                v[j] = (float) SegmentCases.gauss(r);
            }
            SegmentSpec spec = new SegmentSpec(i, g, IntStream.range(0, g.size()).boxed().toList(), 1);
            cases.add(new SegmentCases.Case("segment " + i, spec, List.of(v), 1e-4, 1));
            DeviceBuffer in = gpu.allocate(4L * v.length);
            DeviceBuffer out = gpu.allocate(12);
            gpu.upload(SegmentCases.segment(v), in);
            buffers.add(List.of(in, out));
            events.add(gpu.submit(spec, List.of(in), List.of(out)));
            MemorySegment host = Arena.ofAuto().allocate(12, 64);
            results.add(host);
            downloads.add(gpu.download(out, host));
        }
        for (int i = 0; i < events.size(); i++) {
            events.get(i).stage().toCompletableFuture().get(60, TimeUnit.SECONDS);
            downloads.get(i).stage().toCompletableFuture().get(60, TimeUnit.SECONDS);
            if (i > 0) {
                assertThat(events.get(i - 1).isDone()).as("events complete in stream order").isTrue();
            }
            SegmentCases.Case c = cases.get(i);
            assertThat(SegmentCases.mismatch(c, List.of(results.get(i).toArray(ValueLayout.JAVA_FLOAT)), c.cpu(CPU)))
                    .as(c.name()).isNull();
        }
        buffers.forEach(l -> l.forEach(gpu::free));
        assertThat(gpu.scratchBytes()).as("one scratch area, grown to the largest segment").isPositive();
    }

    @Test
    void aSegmentTheGpuCannotRunFailsItsEventNamingTheNodeAndTheDeviceKeepsServing() throws Exception {
        assumeGpu();
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", TensorType.of(DType.F32, 2, 5)));
        int arg = b.add(new Op.ArgMax(1, false), b.add(new Op.Unary(Op.UnaryFn.EXP), x));
        OpGraph g = b.build(List.of(arg));
        SegmentSpec spec = new SegmentSpec(3, g, IntStream.range(0, g.size()).boxed().toList(), 1);
        DeviceBuffer in = gpu.allocate(40);
        DeviceBuffer out = gpu.allocate(8);
        try {
            CompletionEvent e = gpu.submit(spec, List.of(in), List.of(out));
            Throwable error = null;
            try {
                e.stage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            } catch (ExecutionException ex) {
                error = ex.getCause();
            } catch (TimeoutException ex) {
                throw new AssertionError("the refused segment's event never completed", ex);
            }
            assertThat(error).isInstanceOf(SegmentExecutionException.class)
                    .hasMessageContaining("segment 3: node %2 argmax");
            assertThat(((SegmentExecutionException) error).node()).isEqualTo(2);
        } finally {
            gpu.free(in);
            gpu.free(out);
        }
        SegmentCases.Case ok = SegmentCases.all(new SplittableRandom(1)).getFirst();
        assertThat(SegmentCases.mismatch(ok, runOnGpu(ok.segment(), ok.inputs()), ok.cpu(CPU))).isNull();
    }
}
