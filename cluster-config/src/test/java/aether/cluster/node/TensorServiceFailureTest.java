package aether.cluster.node;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.exchange.TensorDescriptor;
import aether.runtime.tensor.GgmlType;
import aether.runtime.transfer.NodeIds;
import aether.runtime.transfer.TensorService;
import aether.runtime.transfer.TensorService.PullReply;
import aether.runtime.transfer.Transport;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A real node (A) pulls from a second cluster member whose "tensor service" is a test probe that misbehaves the ways a
 * holder can: it refuses, it accepts and never sends, it never answers. Each pull fails with an error naming the
 * holder, within the configured timeouts; nothing waits forever and nothing lands in A's store.
 */
@Timeout(60)
class TensorServiceFailureTest {

    static AetherNode a;
    static ActorTestKit b;
    static String bId;
    static TestProbe<TensorService.Command> holder;

    @BeforeAll
    static void start() throws Exception {
        a = AetherNode.start(NodeConfig.load(Map.of("aether.node.port", 0, "aether.node.cpu-workers", 0,
                "aether.exchange.answer-timeout", "1s", "aether.exchange.transfer-timeout", "1s",
                "aether.exchange.aeron-dir", Path.of(System.getProperty("java.io.tmpdir"))
                        .resolve("aether-failure-test-" + System.nanoTime()).toString()), null));
        a.up().toCompletableFuture().get(30, TimeUnit.SECONDS);
        b = ActorTestKit.create("aether", NodeConfig.load(Map.of("aether.node.port", 0), null));
        Cluster.get(b.system()).manager().tell(Join.create(Cluster.get(a.system()).selfMember().address()));
        bId = NodeIds.of(b.system());
        holder = b.createTestProbe();
        b.system().receptionist().tell(Receptionist.register(TensorService.KEY, holder.ref()));
        TestProbe<PullReply> probe = TestProbe.create(a.system());
        probe.awaitAssert(Duration.ofSeconds(20), () -> {     // until A's service lists B's "service"
            a.tensorService().tell(new TensorService.Pull(tensorOnB(1000), probe.ref()));
            holder.expectMessageClass(TensorService.Fetch.class, Duration.ofMillis(500));
            probe.receiveMessage(Duration.ofSeconds(3));
            return null;
        });
    }

    @AfterAll
    static void stop() {
        if (b != null) {
            b.shutdownTestKit();
        }
        if (a != null) {
            a.close();
        }
    }

    /** The holder's next fetch of tensor {@code id} (fetches left over from the start-up probing are skipped). */
    static TensorService.Fetch fetchOf(long id) {
        while (true) {
            TensorService.Fetch fetch = holder.expectMessageClass(TensorService.Fetch.class, Duration.ofSeconds(5));
            if (fetch.tensorId() == id) {
                return fetch;
            }
        }
    }

    static TensorDescriptor tensorOnB(long id) {
        return TensorDescriptor.of(id, 1, GgmlType.F32, List.of(1024L, 8L), TensorDescriptor.Location.local(bId));
    }

    @Test
    void shouldReportARefusalWithTheHoldersReason() {
        TestProbe<PullReply> probe = TestProbe.create(a.system());
        a.tensorService().tell(new TensorService.Pull(tensorOnB(1), probe.ref()));
        TensorService.Fetch fetch = fetchOf(1);
        assertThat(fetch.tensorId()).isEqualTo(1);
        assertThat(fetch.inbox().nodeId()).isEqualTo(a.nodeId());
        fetch.requester().tell(new TensorService.FetchRefused(fetch.wireId(), bId, "tensor 1 v1 is not stored on " + bId));
        TensorService.PullFailed failed = probe.expectMessageClass(TensorService.PullFailed.class);
        assertThat(failed).isEqualTo(new TensorService.PullFailed(1, 1, bId, "tensor 1 v1 is not stored on " + bId));
    }

    @Test
    void shouldFailATransferThatNeverArrivesAfterTheTransferTimeout() {
        TestProbe<PullReply> probe = TestProbe.create(a.system());
        a.tensorService().tell(new TensorService.Pull(tensorOnB(2), probe.ref()));
        TensorService.Fetch fetch = fetchOf(2);
        fetch.requester().tell(new TensorService.FetchAccepted(fetch.wireId(), Transport.UDP));   // and sends nothing
        TensorService.PullFailed failed = probe.expectMessageClass(TensorService.PullFailed.class, Duration.ofSeconds(10));
        assertThat(failed.nodeId()).isEqualTo(bId);
        assertThat(failed.reason()).startsWith("tensor 2 v1 from " + bId + " over UDP: ").contains("TIMEOUT");
        assertThat(a.store().contains(2, 1)).isFalse();
    }

    @Test
    void shouldFailAFetchThatIsNeverAnswered() {
        TestProbe<PullReply> probe = TestProbe.create(a.system());
        a.tensorService().tell(new TensorService.Pull(tensorOnB(3), probe.ref()));
        fetchOf(3);             // and no answer
        TensorService.PullFailed failed = probe.expectMessageClass(TensorService.PullFailed.class, Duration.ofSeconds(10));
        assertThat(failed).isEqualTo(new TensorService.PullFailed(3, 1, bId,
                "tensor 3 v1: node " + bId + " did not answer the fetch within PT1S"));
    }
}
