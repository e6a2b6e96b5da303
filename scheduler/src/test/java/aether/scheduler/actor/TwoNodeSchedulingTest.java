package aether.scheduler.actor;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cpu.CpuDevice;
import aether.device.spi.Device;
import aether.device.worker.TensorFetcher;
import aether.device.worker.TensorStore;
import aether.runtime.ir.Shape;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.SchedulerState;
import aether.runtime.protocol.TensorRef;
import aether.scheduler.client.ComputeRuntime;
import aether.scheduler.client.JobResult;
import aether.scheduler.exec.HostSegmentExecutor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The scheduler's multi-node bookkeeping in one JVM: node "a" runs only a scheduler, node "b" only workers, each with
 * its own tensor store. The fetcher stands in for the Aeron exchange (the cluster module's part) by copying between
 * the stores, so every input crosses to b and every output back to a, and every copy must be released.
 */
@Timeout(60)
class TwoNodeSchedulingTest {
    static final ActorTestKit kit = ActorTestKit.create("TwoNodeSchedulingTest", StrictPekko.config());

    @AfterAll
    static void shutdown() {
        kit.shutdownTestKit();
    }

    /** Copies a tensor from the store of the node that holds it into fresh memory of {@code local}'s node. */
    static TensorFetcher copying(TensorStore local, Map<String, TensorStore> nodes, AtomicInteger fetches) {
        return ref -> {
            fetches.incrementAndGet();
            MemorySegment source = nodes.get(ref.nodeId()).get(ref);
            if (source == null) {
                return CompletableFuture.failedFuture(new IllegalStateException(ref + " is gone"));
            }
            MemorySegment copy = Arena.ofAuto().allocate(Math.max(1, ref.byteSize()), 64).asSlice(0, ref.byteSize());
            copy.copyFrom(source);
            TensorRef here = new TensorRef(ref.id(), ref.version(), ref.type(), local.nodeId(), ref.location());
            return CompletableFuture.completedFuture(new TensorStore.Entry(here, copy, () -> { }));
        };
    }

    @Test
    void shouldRunOnAnotherNodesWorkersMovingTensorsThroughTheFetcherAndReleaseEveryCopy() {
        TensorStore a = new TensorStore("a");
        TensorStore b = new TensorStore("b");
        Map<String, TensorStore> nodes = new ConcurrentHashMap<>(Map.of("a", a, "b", b));
        AtomicInteger fetchedByA = new AtomicInteger();
        AtomicInteger fetchedByB = new AtomicInteger();
        HostSegmentExecutor executor = new HostSegmentExecutor();
        List<Device> devices = List.of(
                new CpuDevice(0, 1, 64L << 20, executor, HostSegmentExecutor.ops(), HostSegmentExecutor.dtypes(),
                        HostSegmentExecutor.quantTypes()),
                new CpuDevice(1, 1, 64L << 20, executor, HostSegmentExecutor.ops(), HostSegmentExecutor.dtypes(),
                        HostSegmentExecutor.quantTypes()));
        try (ComputeRuntime workers = ComputeRuntime.start(kit.system(), new ComputeRuntime.Settings("b", 2, 1,
                64L << 20, 1L << 30), devices, b, copying(b, nodes, fetchedByB), false);
             ComputeRuntime scheduler = ComputeRuntime.start(kit.system(), new ComputeRuntime.Settings("a", 0, 1,
                     64L << 20, 1L << 30), List.of(), a, copying(a, nodes, fetchedByA), true)) {
            TestProbe<SchedulerState> states = kit.createTestProbe();
            states.awaitAssert(Duration.ofSeconds(10), () -> {
                scheduler.scheduler().tell(new JobCommand.GetSchedulerState(states.ref()));
                assertThat(states.receiveMessage().workers()).hasSize(2)
                        .allSatisfy(w -> assertThat(w.capabilities().nodeId()).isEqualTo("b"));
                return null;
            });
            Random rnd = new Random(7);
            Graph g = new Graph();
            Tensor x = g.tensor(floats(rnd, 32), Shape.of(4, 8));
            Tensor w1 = g.tensor(floats(rnd, 64), Shape.of(8, 8));
            Tensor w2 = g.tensor(floats(rnd, 64), Shape.of(8, 8));
            Tensor left = x.matmul(w1).relu();
            Tensor right = x.matmul(w2).tanh();
            Tensor y = left.matmulT(right).softmax(-1);

            JobResult result = scheduler.client().submit(g, y, left).toCompletableFuture()
                    .orTimeout(30, TimeUnit.SECONDS).join();

            var expected = g.evaluate(new ReferenceExecutor(), y, left);
            assertThat(result.floats(0)).containsExactly(expected.floats(y));
            assertThat(result.floats(1)).containsExactly(expected.floats(left));
            assertThat(result.stats().segments()).allSatisfy(s -> assertThat(s.ranOn()).startsWith("b/"));
            assertThat(fetchedByB.get()).as("inputs fetched by node b").isGreaterThanOrEqualTo(3);
            assertThat(fetchedByA.get()).as("outputs fetched by node a").isEqualTo(2);
            states.awaitAssert(Duration.ofSeconds(10), () -> {
                assertThat(a.size()).as("tensors left on a").isZero();
                assertThat(b.size()).as("tensors left on b (outputs and fetched copies)").isZero();
                return null;
            });
        }
    }

    static float[] floats(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return v;
    }
}
