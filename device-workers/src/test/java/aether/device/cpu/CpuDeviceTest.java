package aether.device.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.device.spi.CompletionEvent;
import aether.device.spi.DeviceBuffer;
import aether.device.spi.DeviceMemoryException;
import aether.device.spi.SegmentExecutionException;
import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.TensorType;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.SegmentSpec;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class CpuDeviceTest {

    static SegmentSpec spec(int index) {
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", TensorType.of(DType.F32, 4)));
        return new SegmentSpec(index, b.build(List.of(b.add(new Op.Scale(2), x))), List.of(0, 1), 1);
    }

    static CpuDevice device(long memory, aether.device.spi.HostSegmentRunner runner) {
        return new CpuDevice(3, 1, memory, runner, Set.of("Scale"), Set.of(GgmlType.F32), Set.of());
    }

    @Test
    void shouldAccountMemoryAndReuseFreedBlocks() {
        try (CpuDevice device = device(1000, (s, in, out) -> { })) {
            DeviceBuffer a = device.allocate(100);
            assertThat(a.byteSize()).isEqualTo(100);
            assertThat(a.location()).isEqualTo(Location.HOST);
            assertThat(a.host().address() % 64).as("cache-line aligned").isZero();
            assertThat(device.allocatedBytes()).isEqualTo(100);
            long address = a.host().address();
            device.free(a);
            device.free(a);   // idempotent
            assertThat(device.allocatedBytes()).isZero();
            DeviceBuffer again = device.allocate(90);   // same size class: the pooled block comes back
            assertThat(again.host().address()).isEqualTo(address);
            assertThatThrownBy(() -> device.allocate(950)).isInstanceOf(DeviceMemoryException.class)
                    .hasMessage("cpu-3: cannot allocate 950 bytes (90 of 1,000 in use)");
            assertThatThrownBy(() -> device.allocate(-1)).hasMessageContaining("expected: 0+");
        }
    }

    @Test
    void shouldSizeBlocksInCacheLinesThenPowersOfTwo() {
        assertThat(CpuDevice.sizeClass(0)).isEqualTo(64);
        assertThat(CpuDevice.sizeClass(65)).isEqualTo(128);
        assertThat(CpuDevice.sizeClass(4096)).isEqualTo(4096);
        assertThat(CpuDevice.sizeClass(4097)).isEqualTo(8192);
        assertThat(CpuDevice.sizeClass((1L << 33) - 5)).isEqualTo(1L << 33);
    }

    @Test
    void shouldRunSegmentsAsynchronouslyOverImportedHostMemoryWithoutCopying() {
        ValueLayout.OfFloat f32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
        try (CpuDevice device = device(1 << 20, (s, in, out) -> {
            for (int i = 0; i < 4; i++) {
                out.getFirst().setAtIndex(f32, i, in.getFirst().getAtIndex(f32, i) * 2);
            }
        })) {
            MemorySegment host = MemorySegment.ofArray(new float[] {1, 2, 3, 4});
            DeviceBuffer in = device.importHost(host);
            assertThat(in.host()).isSameAs(host);
            DeviceBuffer out = device.allocate(16);
            CompletionEvent done = device.submit(spec(0), List.of(in), List.of(out));
            done.stage().toCompletableFuture().orTimeout(10, TimeUnit.SECONDS).join();
            assertThat(done.isDone()).isTrue();
            assertThat(done.elapsedNanos()).isPositive();
            assertThat(out.host().toArray(f32)).containsExactly(2, 4, 6, 8);
            device.free(in);   // a view: nothing to free
            assertThat(device.allocatedBytes()).isEqualTo(16);
        }
    }

    @Test
    void shouldRunSmallSegmentsOnTheSubmittingThreadAndLargerOnesOnTheDeviceThread() throws Exception {
        List<Thread> ranOn = new java.util.concurrent.CopyOnWriteArrayList<>();
        // spec(i): a Scale over 4 floats, 8 elements in all
        try (CpuDevice device = new CpuDevice(3, 1, 1 << 20, (s, in, out) -> ranOn.add(Thread.currentThread()),
                Set.of("Scale"), Set.of(GgmlType.F32), Set.of(), 8)) {
            DeviceBuffer in = device.allocate(16);
            DeviceBuffer out = device.allocate(16);
            CompletionEvent inline = device.submit(spec(0), List.of(in), List.of(out));
            assertThat(inline.stage().toCompletableFuture()).as("done before submit returned").isCompleted();
            assertThat(ranOn).containsExactly(Thread.currentThread());

            OpGraph.Builder b = new OpGraph.Builder();
            int x = b.add(new Op.Input("x", TensorType.of(DType.F32, 8)));
            SegmentSpec nine = new SegmentSpec(1, b.build(List.of(b.add(new Op.Scale(2), x))), List.of(0, 1), 1);
            DeviceBuffer in8 = device.allocate(32);
            DeviceBuffer out8 = device.allocate(32);
            device.submit(nine, List.of(in8), List.of(out8)).stage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            assertThat(ranOn).hasSize(2);
            assertThat(ranOn.get(1).getName()).as("16 elements > 8: a device thread").startsWith("aether-cpu-3");
        }
        assertThatThrownBy(() -> new CpuDevice(0, 1, 1, (s, in, out) -> { }, Set.of(), Set.of(), Set.of(), -1))
                .hasMessageContaining("inlineMaxElements -1 (expected: 0+)");
    }

    @Test
    void shouldSkipWorkCancelledBeforeItStartsAndReportFailuresAndClosing() throws Exception {
        CountDownLatch hold = new CountDownLatch(1);
        CountDownLatch running = new CountDownLatch(1);
        try (CpuDevice device = device(1 << 20, (s, in, out) -> {
            if (s.index() == 0) {
                running.countDown();
                try {
                    hold.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            if (s.index() == 2) {
                throw new IllegalStateException("kernel exploded");
            }
        })) {
            DeviceBuffer buffer = device.allocate(16);
            CompletionEvent first = device.submit(spec(0), List.of(buffer), List.of(buffer));
            running.await(10, TimeUnit.SECONDS);
            CompletionEvent second = device.submit(spec(1), List.of(buffer), List.of(buffer));
            assertThat(first.cancel()).as("already running").isFalse();
            assertThat(second.cancel()).as("still queued").isTrue();
            hold.countDown();
            first.stage().toCompletableFuture().orTimeout(10, TimeUnit.SECONDS).join();
            assertThatThrownBy(() -> second.stage().toCompletableFuture().join())
                    .isInstanceOf(CancellationException.class);

            CompletionEvent failing = device.submit(spec(2), List.of(buffer), List.of(buffer));
            assertThatThrownBy(() -> failing.stage().toCompletableFuture().orTimeout(10, TimeUnit.SECONDS).join())
                    .isInstanceOf(CompletionException.class).cause().isInstanceOf(SegmentExecutionException.class)
                    .hasMessageContaining("segment 2").hasMessageContaining("kernel exploded");

            device.close();
            CompletionEvent late = device.submit(spec(3), List.of(buffer), List.of(buffer));
            assertThatThrownBy(() -> late.stage().toCompletableFuture().join()).cause()
                    .hasMessageContaining("cpu-3 is closed");
        }
    }
}
