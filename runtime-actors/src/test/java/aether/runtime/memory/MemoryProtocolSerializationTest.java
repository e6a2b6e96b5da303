package aether.runtime.memory;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.memory.AllocateReply.Granted;
import aether.runtime.memory.AllocateReply.Rejected;
import aether.runtime.memory.MemoryManager.Ack;
import aether.runtime.memory.MemoryManager.ResidencyChanged;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.EvictionAction;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.MemoryAction;
import java.lang.reflect.Modifier;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.apache.pekko.serialization.Serializers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Every message of the memory protocol survives Jackson CBOR, the serializer used between nodes. */
@Timeout(30)
class MemoryProtocolSerializationTest {
    static final ActorTestKit kit = ActorTestKit.create("MemoryProtocolSerializationTest", PekkoTestConfig.strict());
    static final Location GPU = Location.device(3);

    @AfterAll
    static void shutdown() {
        kit.shutdownTestKit();
    }

    static List<Object> messages() {
        ActorRef<Ack> acks = kit.<Ack>createTestProbe().ref();
        ActorRef<AllocateReply> allocations = kit.<AllocateReply>createTestProbe().ref();
        ActorRef<MemoryState> states = kit.<MemoryState>createTestProbe().ref();
        ActorRef<ResidencyChanged> subscriber = kit.<ResidencyChanged>createTestProbe().ref();
        BufferId id = new BufferId(Long.MAX_VALUE);
        MemoryAction evict = new MemoryAction.Evict(id, GPU, EvictionAction.COPY_TO_HOST_THEN_FREE, 1L << 40);
        MemoryAction drop = new MemoryAction.Evict(new BufferId(0), Location.HOST, EvictionAction.DROP_MAPPING, 7);
        MemoryAction prefetch = new MemoryAction.Prefetch(new BufferId(5), GPU, 4096);
        MemoryAction invalidate = new MemoryAction.Invalidate(new BufferId(6), Location.HOST, 1);
        return List.of(
                new MemoryManager.Register(id, 123, BufferOrigin.WEIGHT, Set.of(Location.HOST, GPU), acks),
                new MemoryManager.Register(id, 1, BufferOrigin.INTERMEDIATE, Set.of(), acks),
                new MemoryManager.Touch(id, GPU),
                new MemoryManager.Pin(id, acks),
                new MemoryManager.Unpin(id),
                new MemoryManager.PinFor(id, acks, acks),
                new MemoryManager.UnpinFor(id, states),
                new MemoryManager.Track(id, 1L << 30, subscriber),
                new MemoryManager.Allocate(id, BufferOrigin.ACTIVATION, 1L << 33, GPU, true, allocations),
                new MemoryManager.RecordWrite(id, Location.HOST, acks),
                new MemoryManager.Free(id, acks),
                new MemoryManager.PrefetchHint(List.of(id, new BufferId(2)), GPU),
                new MemoryManager.SetBudget(GPU, 80L << 30),
                new MemoryManager.GetState(states),
                new MemoryManager.Subscribe(subscriber),
                new MemoryManager.Unsubscribe(subscriber),
                new MemoryManager.Confirmed(id),
                new MemoryManager.Refused(id, "buffer#1 is pinned (1 in-flight uses): ünïcode ok"),
                new Granted(id, GPU, List.of(evict, drop, prefetch, invalidate)),
                new Granted(id, Location.HOST, List.of()),
                new Rejected(id, GPU, 10, 5, 4, 3, "device:3: 10 bytes requested"),
                new ResidencyChanged(evict, 2, Set.of(Location.HOST)),
                new ResidencyChanged(invalidate, 0, Set.of()),
                evict,
                drop,
                prefetch,
                invalidate,
                new MemoryState(List.of(new MemoryState.LocationState(Location.HOST, Long.MAX_VALUE, 10, 0, 1),
                        new MemoryState.LocationState(GPU, 100, 90, 50, 3)), 4, 1, 2, 3, 4, 5, 6, 7),
                new MemoryState(List.of(), 0, 0, 0, 0, 0, 0, 0, 0, 2, 1L << 40, 3, 4),
                new MemoryState(List.of(), 4, 0, 0, 0, 0, 0, 0, 0).withTotals(
                        new MemoryState.BufferTotals(1L << 41, 1, 1, 10, 1, 20, 1, 1L << 41, 1, 0)));
    }

    static Stream<Object> everyMessage() {
        return messages().stream();
    }

    @ParameterizedTest
    @MethodSource("everyMessage")
    void shouldRoundTripThroughJacksonCbor(Object message) {
        Serialization serialization = SerializationExtension.get(kit.system().classicSystem());
        Serializer serializer = serialization.findSerializerFor(message);
        assertThat(serializer.getClass().getName()).isEqualTo("org.apache.pekko.serialization.jackson.JacksonCborSerializer");

        byte[] bytes = serialization.serialize(message).get();
        Object back = serialization.deserialize(bytes, serializer.identifier(), Serializers.manifestFor(serializer, message))
                .get();

        assertThat(back).isEqualTo(message);
    }

    @Test
    void shouldCoverEveryPublicMessageType() {
        assertThat(org.apache.pekko.actor.NoSerializationVerificationNeeded.class)
                .as("the only node-local message").isAssignableFrom(MemoryManager.Batch.class);
        Set<Class<?>> covered = new HashSet<>();
        for (Object message : messages()) {
            covered.add(message.getClass());
        }
        for (Class<?> protocol : List.of(MemoryManager.Command.class, Ack.class, AllocateReply.class, MemoryAction.class)) {
            Arrays.stream(protocol.getPermittedSubclasses())
                    .filter(type -> Modifier.isPublic(type.getModifiers()))
                    // node-local by design (a scheduler's batch to its own node's manager): never serialized
                    .filter(type -> !org.apache.pekko.actor.NoSerializationVerificationNeeded.class.isAssignableFrom(type))
                    .forEach(type -> assertThat(covered).as("a round-trip sample of %s", type).contains(type));
        }
    }
}
