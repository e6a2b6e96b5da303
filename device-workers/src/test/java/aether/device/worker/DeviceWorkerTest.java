package aether.device.worker;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cpu.CpuDevice;
import aether.device.spi.HostSegmentRunner;
import aether.device.spi.SegmentExecutionException;
import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.DeviceKind;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.SegmentEvent;
import aether.runtime.protocol.SegmentSpec;
import aether.runtime.protocol.ServiceKeys;
import aether.runtime.protocol.TensorRef;
import aether.runtime.protocol.WorkerCommand;
import aether.runtime.protocol.WorkerDescribed;
import aether.runtime.protocol.WorkerMessage;
import aether.runtime.tensor.GgmlType;
import com.typesafe.config.ConfigFactory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The device worker over a real CPU device, under serialize-messages. The segment runner here understands one op
 * (scale) so the worker's plumbing is tested without the compiler, which lives in the scheduler module.
 */
@Timeout(30)
class DeviceWorkerTest {
    static final ActorTestKit kit = ActorTestKit.create("DeviceWorkerTest", ConfigFactory.parseString("""
            pekko.actor.serialize-messages = on
            pekko.actor.serialize-creators = off
            pekko.loglevel = WARNING
            """).withFallback(ConfigFactory.load()));
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final JobId JOB = new JobId("job-1");

    @AfterAll
    static void shutdown() {
        kit.shutdownTestKit();
    }

    /** Runs {@code input -> scale(f)} segments; anything else fails naming its first non-input node. */
    static final class ScaleRunner implements HostSegmentRunner {
        final AtomicLong lastInputAddress = new AtomicLong();
        volatile CountDownLatch hold;

        @Override
        public void run(SegmentSpec segment, List<MemorySegment> inputs, List<MemorySegment> outputs) {
            CountDownLatch h = hold;
            if (h != null) {
                try {
                    h.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            var node = segment.graph().node(segment.graph().outputs().getFirst());
            if (!(node.op() instanceof Op.Scale scale)) {
                throw new SegmentExecutionException(node.id(), node.op().name(), "no kernel for " + node.op().name(),
                        null);
            }
            MemorySegment in = inputs.getFirst();
            lastInputAddress.set(in.address());
            MemorySegment out = outputs.getFirst();
            for (long i = 0; i < in.byteSize() / 4; i++) {
                out.setAtIndex(F32, i, (float) (in.getAtIndex(F32, i) * scale.factor()));
            }
        }
    }

    static SegmentSpec segment(int index, Op op, int n) {
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", TensorType.of(DType.F32, n)));
        int y = b.add(op, x);
        return new SegmentSpec(index, b.build(List.of(y)), List.of(0, 1), 1);
    }

    static CpuDevice device(HostSegmentRunner runner, long memory) {
        return new CpuDevice(0, 1, memory, runner, Set.of("Scale", "Unary", "Input"), Set.of(GgmlType.F32),
                Set.of(GgmlType.Q8_0));
    }

    static TensorRef storeInput(TensorStore store, long id, float... values) {
        Arena arena = Arena.ofShared();
        MemorySegment s = arena.allocate((long) values.length * 4, 64);
        for (int i = 0; i < values.length; i++) {
            s.setAtIndex(F32, i, values[i]);
        }
        TensorRef ref = new TensorRef(new BufferId(id), 0, TensorType.of(DType.F32, values.length), store.nodeId(),
                Location.HOST);
        store.put(new TensorStore.Entry(ref, s, arena::close));
        return ref;
    }

    @Test
    void shouldRegisterWithTheReceptionistAndDescribeItsDevice() {
        try (CpuDevice device = device(new ScaleRunner(), 1 << 20)) {
            ActorRef<WorkerMessage> worker = kit.spawn(DeviceWorker.create("n1/cpu-0", device, new TensorStore("n1"),
                    TensorFetcher.localOnly("n1")));
            TestProbe<Receptionist.Listing> listings = kit.createTestProbe();
            listings.awaitAssert(Duration.ofSeconds(5), () -> {
                kit.system().receptionist().tell(Receptionist.find(ServiceKeys.WORKERS, listings.ref()));
                assertThat(listings.receiveMessage().getServiceInstances(ServiceKeys.WORKERS))
                        .contains(worker.<WorkerCommand>narrow());
                return null;
            });
            TestProbe<WorkerDescribed> described = kit.createTestProbe();
            worker.tell(new WorkerCommand.DescribeWorker(described.ref()));
            WorkerDescribed d = described.receiveMessage();
            assertThat(d.capabilities().workerId()).isEqualTo("n1/cpu-0");
            assertThat(d.capabilities().nodeId()).isEqualTo("n1");
            assertThat(d.capabilities().kind()).isEqualTo(DeviceKind.CPU);
            assertThat(d.capabilities().memoryBytes()).isEqualTo(1 << 20);
            assertThat(d.capabilities().ops()).contains("Scale");
            assertThat(d.worker()).isEqualTo(worker.<WorkerCommand>narrow());
            kit.stop(worker);
        }
    }

    @Test
    void shouldRunASegmentOnTheStoredInputInPlaceAndKeepItsOutputUntilReleased() {
        ScaleRunner runner = new ScaleRunner();
        TensorStore store = new TensorStore("n2");
        try (CpuDevice device = device(runner, 1 << 20)) {
            ActorRef<WorkerMessage> worker = kit.spawn(DeviceWorker.create("n2/cpu-0", device, store,
                    TensorFetcher.localOnly("n2")));
            TensorRef input = storeInput(store, 1, 1.5f, -2f, 3f);
            TestProbe<SegmentEvent> replies = kit.createTestProbe();

            worker.tell(new WorkerCommand.RunSegment(JOB, segment(0, new Op.Scale(2), 3), List.of(input),
                    List.of(new BufferId(2)), replies.ref()));

            var done = replies.expectMessageClass(SegmentEvent.SegmentCompleted.class);
            TensorRef out = done.outputs().getFirst();
            assertThat(out.id()).isEqualTo(new BufferId(2));
            assertThat(out.nodeId()).isEqualTo("n2");
            assertThat(store.get(out).toArray(F32)).containsExactly(3f, -4f, 6f);
            assertThat(runner.lastInputAddress.get()).as("the stored buffer itself, not a copy")
                    .isEqualTo(store.get(input).address());
            assertThat(device.allocatedBytes()).isEqualTo(12);

            worker.tell(new WorkerCommand.ReleaseTensors(List.of(out.id(), new BufferId(99))));
            replies.awaitAssert(() -> {
                assertThat(device.allocatedBytes()).isZero();
                assertThat(store.entry(out.id())).isNull();
                return null;
            });
            kit.stop(worker);
        }
    }

    @Test
    void shouldNameTheNodeAndOpOfAFailingSegmentAndKeepServing() {
        TensorStore store = new TensorStore("n3");
        try (CpuDevice device = device(new ScaleRunner(), 1 << 20)) {
            ActorRef<WorkerMessage> worker = kit.spawn(DeviceWorker.create("n3/cpu-0", device, store,
                    TensorFetcher.localOnly("n3")));
            TensorRef input = storeInput(store, 1, 1f);
            TestProbe<SegmentEvent> replies = kit.createTestProbe();

            worker.tell(new WorkerCommand.RunSegment(JOB, segment(4, new Op.Unary(Op.UnaryFn.EXP), 1),
                    List.of(input), List.of(new BufferId(2)), replies.ref()));
            var failed = replies.expectMessageClass(SegmentEvent.SegmentFailed.class);
            assertThat(failed.segment()).isEqualTo(4);
            assertThat(failed.node()).isEqualTo(1);
            assertThat(failed.op()).isEqualTo("exp");
            assertThat(failed.worker()).isEqualTo("n3/cpu-0");
            assertThat(device.allocatedBytes()).as("the failed segment's outputs are freed").isZero();

            worker.tell(new WorkerCommand.RunSegment(JOB, segment(5, new Op.Scale(-1), 1), List.of(input),
                    List.of(new BufferId(3)), replies.ref()));
            assertThat(replies.expectMessageClass(SegmentEvent.SegmentCompleted.class).segment()).isEqualTo(5);
            kit.stop(worker);
        }
    }

    @Test
    void shouldFailClearlyWhenOutputsDoNotFitOrAnInputIsMissing() {
        TensorStore store = new TensorStore("n4");
        try (CpuDevice device = device(new ScaleRunner(), 8)) {
            ActorRef<WorkerMessage> worker = kit.spawn(DeviceWorker.create("n4/cpu-0", device, store,
                    TensorFetcher.localOnly("n4")));
            TensorRef input = storeInput(store, 1, 1f, 2f, 3f);
            TestProbe<SegmentEvent> replies = kit.createTestProbe();

            worker.tell(new WorkerCommand.RunSegment(JOB, segment(0, new Op.Scale(2), 3), List.of(input),
                    List.of(new BufferId(2)), replies.ref()));
            assertThat(replies.expectMessageClass(SegmentEvent.SegmentFailed.class).message())
                    .contains("cannot allocate 12 bytes").contains("0 of 8 in use");

            TensorRef missing = new TensorRef(new BufferId(77), 0, TensorType.of(DType.F32, 3), "n4", Location.HOST);
            worker.tell(new WorkerCommand.RunSegment(JOB, segment(1, new Op.Scale(2), 3), List.of(missing),
                    List.of(new BufferId(3)), replies.ref()));
            assertThat(replies.expectMessageClass(SegmentEvent.SegmentFailed.class).message())
                    .contains("buffer#77").contains("not held by node n4");

            TensorRef remote = new TensorRef(new BufferId(78), 0, TensorType.of(DType.F32, 3), "elsewhere",
                    Location.HOST);
            worker.tell(new WorkerCommand.RunSegment(JOB, segment(2, new Op.Scale(2), 3), List.of(remote),
                    List.of(new BufferId(4)), replies.ref()));
            assertThat(replies.expectMessageClass(SegmentEvent.SegmentFailed.class).message())
                    .contains("fetching inputs failed").contains("no exchange");
            kit.stop(worker);
        }
    }

    @Test
    void shouldRunOnInputsFetchedFromAnotherNode() {
        TensorStore store = new TensorStore("n5");
        TensorStore other = new TensorStore("n6");
        TensorRef remote = storeInput(other, 5, 4f, 8f);
        TensorFetcher fetcher = ref -> {
            Arena arena = Arena.ofShared();
            MemorySegment copy = arena.allocate(ref.byteSize());
            copy.copyFrom(other.get(ref));
            return CompletableFuture.completedFuture(new TensorStore.Entry(new TensorRef(ref.id(), ref.version(),
                    ref.type(), "n5", ref.location()), copy, arena::close));
        };
        try (CpuDevice device = device(new ScaleRunner(), 1 << 20)) {
            ActorRef<WorkerMessage> worker = kit.spawn(DeviceWorker.create("n5/cpu-0", device, store, fetcher));
            TestProbe<SegmentEvent> replies = kit.createTestProbe();
            worker.tell(new WorkerCommand.RunSegment(JOB, segment(0, new Op.Scale(0.5), 2), List.of(remote),
                    List.of(new BufferId(6)), replies.ref()));
            TensorRef out = replies.expectMessageClass(SegmentEvent.SegmentCompleted.class).outputs().getFirst();
            assertThat(store.get(out).toArray(F32)).containsExactly(2f, 4f);
            assertThat(store.entry(new BufferId(5))).as("the fetched copy is kept for later segments").isNotNull();
            kit.stop(worker);
        }
    }

    @Test
    void shouldDropACancelledSegmentWithoutAnAnswer() throws Exception {
        ScaleRunner runner = new ScaleRunner();
        runner.hold = new CountDownLatch(1);
        TensorStore store = new TensorStore("n7");
        try (CpuDevice device = device(runner, 1 << 20)) {
            ActorRef<WorkerMessage> worker = kit.spawn(DeviceWorker.create("n7/cpu-0", device, store,
                    TensorFetcher.localOnly("n7")));
            TensorRef input = storeInput(store, 1, 1f);
            TestProbe<SegmentEvent> replies = kit.createTestProbe();
            worker.tell(new WorkerCommand.RunSegment(JOB, segment(0, new Op.Scale(2), 1), List.of(input),
                    List.of(new BufferId(2)), replies.ref()));
            worker.tell(new WorkerCommand.RunSegment(JOB, segment(1, new Op.Scale(3), 1), List.of(input),
                    List.of(new BufferId(3)), replies.ref()));   // queued behind segment 0 on the one thread
            worker.tell(new WorkerCommand.CancelSegment(JOB, 1));
            TestProbe<WorkerDescribed> processed = kit.createTestProbe();   // the worker handles messages in order:
            worker.tell(new WorkerCommand.DescribeWorker(processed.ref()));   // once this is answered, so is the cancel
            processed.receiveMessage();
            runner.hold.countDown();

            assertThat(replies.expectMessageClass(SegmentEvent.SegmentCompleted.class).segment()).isZero();
            replies.expectNoMessage(Duration.ofMillis(300));
            assertThat(store.entry(new BufferId(3))).isNull();
            assertThat(device.allocatedBytes()).as("only segment 0's output is held").isEqualTo(4);
            kit.stop(worker);
        }
    }

    /**
     * A device whose memory the host cannot address (as a GPU's): a CPU device whose buffers hide their host view, so
     * the worker must upload inputs and download outputs; downloads fail while {@code downloadFailure} is set.
     */
    static final class DeviceOnlyMemory implements aether.device.spi.Device {
        final CpuDevice inner;
        volatile RuntimeException downloadFailure;

        DeviceOnlyMemory(CpuDevice inner) {
            this.inner = inner;
        }

        record Hidden(aether.device.spi.DeviceBuffer buffer) implements aether.device.spi.DeviceBuffer {
            @Override
            public long byteSize() {
                return buffer.byteSize();
            }

            @Override
            public Location location() {
                return Location.device(0);
            }

            @Override
            public MemorySegment host() {
                return null;
            }
        }

        static List<aether.device.spi.DeviceBuffer> unwrap(List<aether.device.spi.DeviceBuffer> buffers) {
            return buffers.stream().map(b -> ((Hidden) b).buffer()).toList();
        }

        @Override
        public aether.device.spi.DeviceCapabilities capabilities() {
            return inner.capabilities();
        }

        @Override
        public aether.device.spi.DeviceBuffer allocate(long byteSize) {
            return new Hidden(inner.allocate(byteSize));
        }

        @Override
        public aether.device.spi.DeviceBuffer importHost(MemorySegment host) {
            return null;
        }

        @Override
        public aether.device.spi.CompletionEvent upload(MemorySegment src, aether.device.spi.DeviceBuffer dst) {
            return inner.upload(src, ((Hidden) dst).buffer());
        }

        @Override
        public aether.device.spi.CompletionEvent download(aether.device.spi.DeviceBuffer src, MemorySegment dst) {
            RuntimeException failure = downloadFailure;
            if (failure != null) {
                aether.device.spi.CompletionEvent e = new aether.device.spi.CompletionEvent();
                e.fail(failure);
                return e;
            }
            return inner.download(((Hidden) src).buffer(), dst);
        }

        @Override
        public void free(aether.device.spi.DeviceBuffer buffer) {
            inner.free(((Hidden) buffer).buffer());
        }

        @Override
        public aether.device.spi.CompletionEvent submit(SegmentSpec segment, List<aether.device.spi.DeviceBuffer> in,
                List<aether.device.spi.DeviceBuffer> out) {
            return inner.submit(segment, unwrap(in), unwrap(out));
        }

        @Override
        public long allocatedBytes() {
            return inner.allocatedBytes();
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    @Test
    void shouldCopyOutputsOfDeviceOnlyMemoryToTheHostAndFreeTheDeviceBuffers() {
        TensorStore store = new TensorStore("n9");
        try (DeviceOnlyMemory device = new DeviceOnlyMemory(device(new ScaleRunner(), 1 << 20))) {
            ActorRef<WorkerMessage> worker = kit.spawn(DeviceWorker.create("n9/cuda-0", device, store,
                    TensorFetcher.localOnly("n9")));
            TensorRef input = storeInput(store, 1, 1.5f, -2f, 3f);
            TestProbe<SegmentEvent> replies = kit.createTestProbe();

            worker.tell(new WorkerCommand.RunSegment(JOB, segment(0, new Op.Scale(2), 3), List.of(input),
                    List.of(new BufferId(2)), replies.ref()));
            TensorRef out = replies.expectMessageClass(SegmentEvent.SegmentCompleted.class).outputs().getFirst();
            assertThat(out.location()).as("the store holds the host copy").isEqualTo(Location.HOST);
            assertThat(store.get(out).toArray(F32)).containsExactly(3f, -4f, 6f);
            replies.awaitAssert(() -> {
                assertThat(device.allocatedBytes()).as("uploaded input and device output freed").isZero();
                return null;
            });

            // a download that fails fails the segment, and nothing stays allocated or stored
            device.downloadFailure = new IllegalStateException("copy engine on fire");
            worker.tell(new WorkerCommand.RunSegment(JOB, segment(1, new Op.Scale(3), 3), List.of(input),
                    List.of(new BufferId(3)), replies.ref()));
            var failed = replies.expectMessageClass(SegmentEvent.SegmentFailed.class);
            assertThat(failed.segment()).isEqualTo(1);
            assertThat(failed.message()).contains("copy engine on fire");
            // the segment's own failure wins over the download's: it names the node
            worker.tell(new WorkerCommand.RunSegment(JOB, segment(2, new Op.Unary(Op.UnaryFn.EXP), 3),
                    List.of(input), List.of(new BufferId(4)), replies.ref()));
            var named = replies.expectMessageClass(SegmentEvent.SegmentFailed.class);
            assertThat(named.node()).isEqualTo(1);
            assertThat(named.op()).isEqualTo("exp");
            replies.awaitAssert(() -> {
                assertThat(device.allocatedBytes()).isZero();
                assertThat(store.entry(new BufferId(3))).isNull();
                assertThat(store.entry(new BufferId(4))).isNull();
                return null;
            });
            kit.stop(worker);
        }
    }
}
