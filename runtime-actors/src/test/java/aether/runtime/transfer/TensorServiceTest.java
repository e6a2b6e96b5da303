package aether.runtime.transfer;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.exchange.ExchangeConfig;
import aether.runtime.exchange.ExchangeNode;
import aether.runtime.exchange.TensorDescriptor;
import aether.runtime.tensor.GgmlType;
import aether.runtime.transfer.TensorService.ChecksumReply;
import aether.runtime.transfer.TensorService.PullReply;
import com.typesafe.config.ConfigFactory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.DatagramSocket;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * One node's tensor service on a real embedded media driver, every message passed through Jackson CBOR
 * ({@code serialize-messages = on}). Transfers between nodes are tested with real clusters in integration-tests.
 */
@Timeout(60)
class TensorServiceTest {

    static ActorTestKit kit;
    static ExchangeNode exchange;
    static TensorStore store;
    static ActorRef<TensorService.Command> service;
    static final Arena arena = Arena.ofShared();

    @BeforeAll
    static void start() throws Exception {
        kit = ActorTestKit.create("TensorServiceTest", ConfigFactory.parseString("""
                pekko.actor.serialize-messages = on
                pekko.loglevel = WARNING
                pekko.loggers = ["org.apache.pekko.event.slf4j.Slf4jLogger"]
                pekko.logging-filter = "org.apache.pekko.event.slf4j.Slf4jLoggingFilter"
                """).withFallback(ConfigFactory.load()));
        exchange = ExchangeNode.launchEmbedded(ExchangeConfig.defaults());
        int port;
        try (DatagramSocket socket = new DatagramSocket(0)) {
            port = socket.getLocalPort();
        }
        store = new TensorStore(NodeIds.of(kit.system()));
        service = kit.spawn(TensorService.create(store, (id, version) -> id == 99 && version == 1
                ? MemorySegment.ofArray(new byte[] {1, 2, 3, 4}) : null, exchange,
                new TransferSettings(Transport.AUTO, 7101, "127.0.0.1", port, 7102, Duration.ofMillis(500),
                        Duration.ofSeconds(5), ExchangeConfig.defaults())));
    }

    @AfterAll
    static void stop() {
        kit.shutdownTestKit();
        exchange.close();
        store.close();
        arena.close();
    }

    static TensorDescriptor put(long id, int n, long seed) {
        MemorySegment data = arena.allocate(n * 4L, 64);
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < n * 4; i++) {
            data.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
        }
        return store.put(TensorDescriptor.of(id, 1, GgmlType.F32, List.of((long) n),
                TensorDescriptor.Location.local(store.nodeId())), data);
    }

    @Test
    void shouldAnswerAPullOfATensorItHoldsWithItsLocalDescriptor() {
        TensorDescriptor d = put(1, 17, 1);
        TestProbe<PullReply> probe = kit.createTestProbe();
        service.tell(new TensorService.Pull(d, probe.ref()));
        var pulled = probe.expectMessageClass(TensorService.Pulled.class);
        assertThat(pulled.tensor()).isEqualTo(d);
        assertThat(pulled.transport()).as("no bytes moved").isNull();
    }

    @Test
    void shouldFailAPullOfALocalTensorItDoesNotHold() {
        var missing = TensorDescriptor.of(2, 5, GgmlType.F32, List.of(3L), TensorDescriptor.Location.local(store.nodeId()));
        TestProbe<PullReply> probe = kit.createTestProbe();
        service.tell(new TensorService.Pull(missing, probe.ref()));
        var failed = probe.expectMessageClass(TensorService.PullFailed.class);
        assertThat(failed.nodeId()).isEqualTo(store.nodeId());
        assertThat(failed.reason()).isEqualTo("tensor 2 v5 is not stored on " + store.nodeId());
    }

    @Test
    void shouldFailAPullFromANodeOutsideTheClusterNamingIt() {
        String stranger = "pekko://aether@10.9.8.7:25520";
        var remote = TensorDescriptor.of(3, 1, GgmlType.Q8_0, List.of(64L, 2L), TensorDescriptor.Location.local(stranger));
        TestProbe<PullReply> probe = kit.createTestProbe();
        service.tell(new TensorService.Pull(remote, probe.ref()));
        var failed = probe.expectMessageClass(TensorService.PullFailed.class, Duration.ofSeconds(5));
        assertThat(failed.nodeId()).isEqualTo(stranger);
        assertThat(failed.reason()).contains("node " + stranger + " is not reachable");
        assertThat(store.contains(3, 1)).isFalse();
    }

    @Test
    void shouldChecksumWhatItHoldsWhereItIs() {
        TensorDescriptor d = put(4, 4097, 4);
        CRC32C crc = new CRC32C();
        crc.update(store.get(4, 1).orElseThrow().data().asByteBuffer());
        TestProbe<ChecksumReply> probe = kit.createTestProbe();
        service.tell(new TensorService.Checksum(d.tensorId(), d.version(), probe.ref()));
        ChecksumReply reply = probe.receiveMessage();
        assertThat(reply.present()).isTrue();
        assertThat(reply.byteLength()).isEqualTo(4097 * 4);
        assertThat(reply.crc32c()).isEqualTo((int) crc.getValue());

        service.tell(new TensorService.Checksum(99, 1, probe.ref()));     // held by the other source
        CRC32C four = new CRC32C();
        four.update(new byte[] {1, 2, 3, 4});
        assertThat(probe.receiveMessage().crc32c()).isEqualTo((int) four.getValue());

        service.tell(new TensorService.Checksum(4, 2, probe.ref()));
        assertThat(probe.receiveMessage()).isEqualTo(new ChecksumReply(4, 2, store.nodeId(), false, 0, 0));
    }

    @Test
    void shouldForgetAReleasedTensor() {
        TensorDescriptor d = put(5, 8, 5);
        service.tell(new TensorService.Release(d.tensorId(), d.version()));
        TestProbe<ChecksumReply> probe = kit.createTestProbe();
        service.tell(new TensorService.Checksum(5, 1, probe.ref()));
        assertThat(probe.receiveMessage().present()).isFalse();
        assertThat(store.contains(5, 1)).isFalse();
    }

    @Test
    void shouldRefuseAFetchOfATensorItDoesNotHold() {
        TestProbe<TensorService.Command> requester = kit.createTestProbe();
        Inbox inbox = new Inbox("pekko://aether@127.0.0.1:1", "elsewhere", null, 7101, "127.0.0.1", 9, 7102);
        service.tell(new TensorService.Fetch(6, 1, 42, inbox, requester.ref()));
        var refused = requester.expectMessageClass(TensorService.FetchRefused.class);
        assertThat(refused.wireId()).isEqualTo(42);
        assertThat(refused.reason()).isEqualTo("tensor 6 v1 is not stored on " + store.nodeId());
    }

    @Test
    void shouldFailAPushOfATensorItDoesNotHold() {
        TestProbe<PullReply> probe = kit.createTestProbe();
        service.tell(new TensorService.Push(7, 1, service, probe.ref()));
        assertThat(probe.expectMessageClass(TensorService.PullFailed.class).reason())
                .isEqualTo("tensor 7 v1 is not stored on " + store.nodeId());
    }

    @Test
    void shouldSerializeEveryMessageThatCrossesNodesWithJacksonCbor() {
        TestProbe<PullReply> pulls = kit.createTestProbe();
        TestProbe<ChecksumReply> sums = kit.createTestProbe();
        var d = TensorDescriptor.of(8, 2, GgmlType.Q4_K, List.of(256L, 3L), TensorDescriptor.Location.local("pekko://a@h:1"));
        Inbox inbox = new Inbox("pekko://a@h:1", "host/boot", "/dev/shm/x", 1, "10.0.0.1", 40000, 2);
        var serialization = SerializationExtension.get(kit.system());
        List<Object> messages = List.of(new TensorService.Pull(d, pulls.ref()),
                new TensorService.Push(1, 2, service, pulls.ref()),
                new TensorService.Fetch(1, 2, 3, inbox, service),
                new TensorService.FetchAccepted(3, Transport.UDP),
                new TensorService.FetchRefused(3, "pekko://a@h:1", "why"),
                new TensorService.Checksum(1, 2, sums.ref()),
                new TensorService.Release(1, 2),
                new TensorService.GetStats(kit.<TensorService.TransferStats>createTestProbe().ref()),
                new TensorService.TransferStats("n", 1, 2, 3, 4, 5, 6, 7, 8, 9),
                new TensorService.Pulled(d, "pekko://b@h:2", Transport.IPC),
                new TensorService.Pulled(d, "pekko://b@h:2", null),
                new TensorService.PullFailed(1, 2, "pekko://b@h:2", "gone"),
                new ChecksumReply(1, 2, "n", true, 5, -7),
                new Inbox("n", "h", null, 1, "127.0.0.1", 1, 2));
        java.util.Set<Class<?>> covered = new java.util.HashSet<>();
        messages.forEach(m -> covered.add(m.getClass()));
        for (Class<?> protocol : List.of(TensorService.Command.class, PullReply.class)) {
            for (Class<?> type : protocol.getPermittedSubclasses()) {
                if (java.lang.reflect.Modifier.isPublic(type.getModifiers())) {
                    assertThat(covered).as("a round-trip sample of %s", type).contains(type);
                }
            }
        }
        for (Object m : messages) {
            var serializer = serialization.findSerializerFor(m);
            assertThat(serializer.getClass().getSimpleName()).as("serializer of %s", m)
                    .isEqualTo("JacksonCborSerializer");
            byte[] bytes = serialization.serialize(m).get();
            Object back = serialization.deserialize(bytes, serializer.identifier(), Serializers.manifestFor(serializer, m)).get();
            assertThat(back).as("round trip of %s", m).isEqualTo(m);
        }
    }
}
