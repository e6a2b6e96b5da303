package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.engine.cuda.DeviceMemoryRegistration.Region;
import aether.runtime.memory.AllocateReply;
import aether.runtime.memory.MemoryManager;
import aether.runtime.memory.MemoryState;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.Location;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A GPU model's device memory booked with a real {@link MemoryManager} (bookkeeping only, so no GPU is needed): the
 * regions count against the device's budget, stay pinned (an allocation that would need them evicted is refused),
 * and are forgotten on close.
 */
@Timeout(60)
class DeviceMemoryRegistrationTest {

    static final ActorTestKit kit = ActorTestKit.create("DeviceMemoryRegistrationTest");
    static final Location GPU = Location.device(0);

    @AfterAll
    static void shutdown() {
        kit.shutdownTestKit();
    }

    private static MemoryState.LocationState gpu(ActorRef<MemoryManager.Command> manager) {
        TestProbe<MemoryState> reply = kit.createTestProbe();
        manager.tell(new MemoryManager.GetState(reply.ref()));
        return reply.receiveMessage().locations().stream().filter(l -> l.location().equals(GPU)).findFirst()
                .orElseThrow();
    }

    private static AllocateReply allocate(ActorRef<MemoryManager.Command> manager, long bytes) {
        TestProbe<AllocateReply> reply = kit.createTestProbe();
        manager.tell(new MemoryManager.Allocate(new BufferId(bytes), BufferOrigin.ACTIVATION, bytes, GPU, false,
                reply.ref()));
        return reply.receiveMessage();
    }

    @Test
    void weightsAndKvCacheArePinnedOnTheDeviceUntilClosed() {
        ActorRef<MemoryManager.Command> manager = kit.spawn(MemoryManager.create(Map.of(GPU, 1000L)));
        var regions = List.of(new Region("weights of layers 2..3 and the head", 600, BufferOrigin.WEIGHT),
                new Region("f16 KV cache of layers 2..3", 200, BufferOrigin.ACTIVATION));
        try (var booking = DeviceMemoryRegistration.register(manager, kit.system(), 0, regions, Duration.ofSeconds(5))) {
            assertThat(booking.bufferIds()).hasSize(2).allMatch(id -> id.value() < 0);
            MemoryState.LocationState state = gpu(manager);
            assertThat(state.usedBytes()).isEqualTo(800);
            assertThat(state.pinnedBytes()).isEqualTo(800);
            assertThat(state.bufferCount()).isEqualTo(2);
            // 300 more bytes would need the pinned weights or cache evicted: refused, and nothing was evicted
            assertThat(allocate(manager, 300)).isInstanceOf(AllocateReply.Rejected.class);
            assertThat(allocate(manager, 150)).isInstanceOf(AllocateReply.Granted.class);
            assertThat(gpu(manager).usedBytes()).isEqualTo(950);
        }
        MemoryState.LocationState after = gpu(manager);
        assertThat(after.usedBytes()).as("the model's regions are forgotten on close").isEqualTo(150);
        assertThat(after.pinnedBytes()).isZero();
    }

    @Test
    void aRefusalNamesTheRegionAndReleasesWhatWasBooked() {
        ActorRef<MemoryManager.Command> manager = kit.spawn(MemoryManager.create(Map.of(GPU, 1000L)));
        // the manager refuses an empty buffer: the weights booked before it must not stay behind
        var regions = List.of(new Region("weights", 600, BufferOrigin.WEIGHT),
                new Region("f16 KV cache", 0, BufferOrigin.ACTIVATION));
        assertThatThrownBy(() -> DeviceMemoryRegistration.register(manager, kit.system(), 0, regions,
                Duration.ofSeconds(5)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("memory manager refused device region 'f16 KV cache' (0 bytes)")
                .hasMessageContaining("size 0 bytes");
        MemoryState.LocationState after = gpu(manager);
        assertThat(after.usedBytes()).isZero();
        assertThat(after.pinnedBytes()).isZero();
        assertThat(after.bufferCount()).isZero();
        assertThatThrownBy(() -> new Region("bad", -5, BufferOrigin.WEIGHT))
                .hasMessageContaining("region 'bad' of -5 bytes");
    }
}
