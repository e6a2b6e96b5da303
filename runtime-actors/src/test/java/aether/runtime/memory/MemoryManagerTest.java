package aether.runtime.memory;

import static aether.runtime.protocol.BufferOrigin.ACTIVATION;
import static aether.runtime.protocol.BufferOrigin.WEIGHT;
import static aether.runtime.protocol.EvictionAction.COPY_TO_HOST_THEN_FREE;
import static aether.runtime.protocol.EvictionAction.FREE;
import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.memory.AllocateReply.Granted;
import aether.runtime.memory.AllocateReply.Rejected;
import aether.runtime.memory.MemoryManager.Ack;
import aether.runtime.memory.MemoryManager.Allocate;
import aether.runtime.memory.MemoryManager.Confirmed;
import aether.runtime.memory.MemoryManager.Free;
import aether.runtime.memory.MemoryManager.GetState;
import aether.runtime.memory.MemoryManager.Pin;
import aether.runtime.memory.MemoryManager.PrefetchHint;
import aether.runtime.memory.MemoryManager.RecordWrite;
import aether.runtime.memory.MemoryManager.Refused;
import aether.runtime.memory.MemoryManager.Register;
import aether.runtime.memory.MemoryManager.ResidencyChanged;
import aether.runtime.memory.MemoryManager.SetBudget;
import aether.runtime.memory.MemoryManager.Subscribe;
import aether.runtime.memory.MemoryManager.Touch;
import aether.runtime.memory.MemoryManager.Unpin;
import aether.runtime.memory.MemoryManager.Unsubscribe;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.MemoryAction.Evict;
import aether.runtime.protocol.MemoryAction.Invalidate;
import aether.runtime.protocol.MemoryAction.Prefetch;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class MemoryManagerTest {
    static final ActorTestKit kit = ActorTestKit.create("MemoryManagerTest", PekkoTestConfig.strict());
    static final Location HOST = Location.HOST;
    static final Location GPU = Location.device(0);

    @AfterAll
    static void shutdown() {
        kit.shutdownTestKit();
    }

    private static BufferId id(long value) {
        return new BufferId(value);
    }

    private static ActorRef<MemoryManager.Command> manager(long gpuBudget) {
        return kit.spawn(MemoryManager.create(Map.of(GPU, gpuBudget)));
    }

    private static Granted allocate(ActorRef<MemoryManager.Command> manager, long id, BufferOrigin origin, long bytes,
            boolean pin) {
        TestProbe<AllocateReply> reply = kit.createTestProbe();
        manager.tell(new Allocate(id(id), origin, bytes, GPU, pin, reply.ref()));
        return reply.expectMessageClass(Granted.class);
    }

    private static MemoryState state(ActorRef<MemoryManager.Command> manager) {
        TestProbe<MemoryState> reply = kit.createTestProbe();
        manager.tell(new GetState(reply.ref()));
        return reply.receiveMessage();
    }

    record Unbound(int value) {}

    @Test
    void testConfigurationSerializesEveryMessage() {
        assertThat(kit.system().settings().config().getBoolean("pekko.actor.serialize-messages")).isTrue();
        // Pekko Typed logs a failed check and drops the message (the tell does not throw): a reply that does not
        // serialize shows up in these tests as a reply that never arrives.
        TestProbe<Object> probe = kit.createTestProbe();
        probe.ref().tell(new Unbound(1));
        probe.ref().tell(new Confirmed(id(1)));
        assertThat(probe.receiveMessage()).isEqualTo(new Confirmed(id(1)));
    }

    @Test
    void shouldEvictLeastRecentlyUsedCopiesAndTellSubscribersInOrder() {
        var manager = manager(1000);
        TestProbe<ResidencyChanged> worker = kit.createTestProbe();
        manager.tell(new Subscribe(worker.ref()));
        allocate(manager, 1, ACTIVATION, 300, false);
        allocate(manager, 2, ACTIVATION, 300, false);
        allocate(manager, 3, WEIGHT, 300, false);
        manager.tell(new Touch(id(1), GPU));

        Granted grant = allocate(manager, 4, ACTIVATION, 500, false);

        Evict first = new Evict(id(2), GPU, COPY_TO_HOST_THEN_FREE, 300);
        Evict second = new Evict(id(3), GPU, FREE, 300);
        assertThat(grant.evictions()).containsExactly(first, second);
        assertThat(worker.receiveMessage()).isEqualTo(new ResidencyChanged(first, 0, Set.of(HOST)));
        assertThat(worker.receiveMessage()).isEqualTo(new ResidencyChanged(second, 0, Set.of()));
        MemoryState state = state(manager);
        assertThat(state.location(GPU)).isEqualTo(new MemoryState.LocationState(GPU, 1000, 800, 0, 2));
        assertThat(state.location(HOST).usedBytes()).isEqualTo(300);
        assertThat(state.evictions()).isEqualTo(2);
        assertThat(state.hits()).isEqualTo(1);
    }

    @Test
    void shouldNeverEvictAPinnedBufferAndEvictItOnceUnpinned() {
        var manager = manager(1000);
        TestProbe<ResidencyChanged> worker = kit.createTestProbe();
        TestProbe<Ack> acks = kit.createTestProbe();
        manager.tell(new Subscribe(worker.ref()));
        allocate(manager, 1, ACTIVATION, 400, false);
        allocate(manager, 2, ACTIVATION, 400, false);
        manager.tell(new Pin(id(1), acks.ref()));
        assertThat(acks.receiveMessage()).isEqualTo(new Confirmed(id(1)));

        Granted grant = allocate(manager, 3, ACTIVATION, 400, false);
        assertThat(grant.evictions()).containsExactly(new Evict(id(2), GPU, COPY_TO_HOST_THEN_FREE, 400));
        worker.receiveMessage();

        manager.tell(new SetBudget(GPU, 500));
        assertThat(worker.receiveMessage().action()).isEqualTo(new Evict(id(3), GPU, COPY_TO_HOST_THEN_FREE, 400));
        assertThat(state(manager).location(GPU)).isEqualTo(new MemoryState.LocationState(GPU, 500, 400, 400, 1));

        manager.tell(new SetBudget(GPU, 100));
        manager.tell(new Unpin(id(1)));
        assertThat(worker.receiveMessage())
                .isEqualTo(new ResidencyChanged(new Evict(id(1), GPU, COPY_TO_HOST_THEN_FREE, 400), 0, Set.of(HOST)));
        assertThat(state(manager).location(GPU).usedBytes()).isZero();
    }

    @Test
    void shouldRejectWhenEverythingThereIsPinned() {
        var manager = manager(1000);
        allocate(manager, 1, ACTIVATION, 500, true);
        allocate(manager, 2, ACTIVATION, 400, true);
        TestProbe<AllocateReply> reply = kit.createTestProbe();

        manager.tell(new Allocate(id(3), ACTIVATION, 200, GPU, false, reply.ref()));

        Rejected rejected = reply.expectMessageClass(Rejected.class);
        assertThat(rejected).isEqualTo(new Rejected(id(3), GPU, 200, 1000, 900, 900, rejected.reason()));
        assertThat(rejected.reason()).contains("device:0", "200 bytes requested", "budget 1,000", "900 pinned");
        MemoryState state = state(manager);
        assertThat(state.bufferCount()).isEqualTo(2);
        assertThat(state.refusedRequests()).isEqualTo(1);
        assertThat(state.location(GPU).pinnedBytes()).isEqualTo(900);
    }

    @Test
    void shouldAnswerBadRequestsWithRefusedAndKeepServing() {
        var manager = manager(1000);
        TestProbe<Ack> acks = kit.createTestProbe();

        manager.tell(new Free(id(9), acks.ref()));
        assertThat(acks.expectMessageClass(Refused.class).reason()).contains("buffer#9 is not registered");
        manager.tell(new Register(id(1), 100, ACTIVATION, Set.of(), acks.ref()));
        assertThat(acks.expectMessageClass(Refused.class).reason()).contains("needs at least one location");
        manager.tell(new Register(id(1), 100, ACTIVATION, Set.of(HOST), acks.ref()));
        assertThat(acks.receiveMessage()).isEqualTo(new Confirmed(id(1)));
        manager.tell(new Pin(id(1), acks.ref()));
        acks.receiveMessage();
        manager.tell(new Free(id(1), acks.ref()));
        assertThat(acks.expectMessageClass(Refused.class).reason()).contains("is pinned");
        manager.tell(new Unpin(id(1)));
        manager.tell(new Unpin(id(1)));   // one too many: logged and counted, not answered
        manager.tell(new Free(id(1), acks.ref()));
        assertThat(acks.receiveMessage()).isEqualTo(new Confirmed(id(1)));

        MemoryState state = state(manager);
        assertThat(state.bufferCount()).isZero();
        assertThat(state.refusedRequests()).isEqualTo(4);
    }

    @Test
    void shouldPrefetchHintedBuffersIntoFreeRoomAndInvalidateStaleCopiesOnWrite() {
        var manager = manager(1000);
        TestProbe<ResidencyChanged> worker = kit.createTestProbe();
        TestProbe<Ack> acks = kit.createTestProbe();
        manager.tell(new Subscribe(worker.ref()));
        manager.tell(new Register(id(1), 600, WEIGHT, Set.of(HOST), acks.ref()));
        manager.tell(new Register(id(2), 600, WEIGHT, Set.of(HOST), acks.ref()));
        assertThat(acks.receiveSeveralMessages(2)).containsExactly(new Confirmed(id(1)), new Confirmed(id(2)));

        manager.tell(new PrefetchHint(List.of(id(1), id(2)), GPU));
        assertThat(worker.receiveMessage())
                .isEqualTo(new ResidencyChanged(new Prefetch(id(1), GPU, 600), 0, Set.of(HOST, GPU)));

        manager.tell(new RecordWrite(id(1), GPU, acks.ref()));
        assertThat(acks.receiveMessage()).isEqualTo(new Confirmed(id(1)));
        assertThat(worker.receiveMessage())
                .isEqualTo(new ResidencyChanged(new Invalidate(id(1), HOST, 600), 1, Set.of(GPU)));

        MemoryState state = state(manager);
        assertThat(state.prefetches()).isEqualTo(1);
        assertThat(state.droppedHints()).isEqualTo(1);
        assertThat(state.invalidations()).isEqualTo(1);
        assertThat(state.location(HOST).usedBytes()).isEqualTo(600);
    }

    @Test
    void shouldStopNotifyingAnUnsubscribedWorker() {
        var manager = manager(100);
        TestProbe<ResidencyChanged> leaving = kit.createTestProbe();
        TestProbe<ResidencyChanged> staying = kit.createTestProbe();
        manager.tell(new Subscribe(leaving.ref()));
        manager.tell(new Subscribe(staying.ref()));
        manager.tell(new Unsubscribe(leaving.ref()));
        allocate(manager, 1, ACTIVATION, 100, false);

        allocate(manager, 2, ACTIVATION, 100, false);

        assertThat(staying.receiveMessage().action()).isEqualTo(new Evict(id(1), GPU, COPY_TO_HOST_THEN_FREE, 100));
        leaving.expectNoMessage(Duration.ofMillis(200));
    }

    @Test
    void shouldReleaseTheDeadWorkersPinsAndDeclareTheBuffersOnlyItHeldLost() {
        var manager = manager(1000);
        TestProbe<Ack> acks = kit.createTestProbe();
        ActorRef<Void> dying = kit.spawn(org.apache.pekko.actor.typed.javadsl.Behaviors.<Void>ignore(), "worker-dying");
        ActorRef<Void> other = kit.spawn(org.apache.pekko.actor.typed.javadsl.Behaviors.<Void>ignore());
        manager.tell(new Register(id(1), 100, ACTIVATION, Set.of(HOST), acks.ref()));
        manager.tell(new MemoryManager.PinFor(id(1), dying, acks.ref()));
        manager.tell(new MemoryManager.PinFor(id(1), other, acks.ref()));
        assertThat(acks.receiveSeveralMessages(3)).containsOnly(new Confirmed(id(1)));
        manager.tell(new MemoryManager.Track(id(2), 500, dying));
        manager.tell(new MemoryManager.Track(id(3), 50, other));
        MemoryState before = state(manager);
        assertThat(before.location(HOST).pinnedBytes()).isEqualTo(100);
        assertThat(before.heldBuffers()).isEqualTo(2);
        assertThat(before.heldBytes()).isEqualTo(550);

        kit.stop(dying);

        acks.awaitAssert(Duration.ofSeconds(10), () -> {
            MemoryState after = state(manager);
            assertThat(after.reclaimedPins()).as("pins of the dead worker released").isEqualTo(1);
            assertThat(after.lostBuffers()).isEqualTo(1);
            assertThat(after.heldBuffers()).isEqualTo(1);
            assertThat(after.heldBytes()).isEqualTo(50);
            return null;
        });
        // the live worker's pin still holds; the dead one's late unpin is ignored, not counted as a refusal
        manager.tell(new MemoryManager.UnpinFor(id(1), dying));
        manager.tell(new Free(id(1), acks.ref()));
        assertThat(acks.expectMessageClass(Refused.class).reason()).contains("is pinned (1 in-flight uses)");
        manager.tell(new MemoryManager.UnpinFor(id(1), other));
        manager.tell(new Free(id(1), acks.ref()));
        assertThat(acks.receiveMessage()).isEqualTo(new Confirmed(id(1)));

        manager.tell(new MemoryManager.PinFor(id(2), other, acks.ref()));
        assertThat(acks.expectMessageClass(Refused.class).reason())
                .contains("buffer#2 is lost", "500 bytes", "worker-dying", "terminated");
        manager.tell(new Free(id(2), acks.ref()));
        manager.tell(new Free(id(3), acks.ref()));
        assertThat(acks.receiveSeveralMessages(2)).containsExactly(new Confirmed(id(2)), new Confirmed(id(3)));
        MemoryState end = state(manager);
        assertThat(end.bufferCount()).isZero();
        assertThat(end.heldBuffers()).isZero();
        assertThat(end.pinnedBytes()).isZero();
        assertThat(end.refusedRequests()).as("only the Free while pinned").isEqualTo(1);
    }

    @Test
    void shouldHandleABatchInOrderAndLogRefusalsNobodyReads() {
        var manager = manager(1000);
        ActorRef<Ack> nobody = kit.system().ignoreRef();
        ActorRef<Void> worker = kit.spawn(org.apache.pekko.actor.typed.javadsl.Behaviors.<Void>ignore());
        manager.tell(new MemoryManager.Batch(List.of(
                new Register(id(1), 100, ACTIVATION, Set.of(HOST), nobody),
                new MemoryManager.PinFor(id(1), worker, nobody),
                new Free(id(1), nobody),                      // refused (pinned): logged, counted
                new MemoryManager.UnpinFor(id(1), worker),
                new Register(id(2), 50, ACTIVATION, Set.of(HOST), nobody))));
        MemoryState state = state(manager);
        assertThat(state.bufferCount()).isEqualTo(2);
        assertThat(state.location(HOST).usedBytes()).isEqualTo(150);
        assertThat(state.pinnedBytes()).isZero();
        assertThat(state.refusedRequests()).isEqualTo(1);
    }
}
