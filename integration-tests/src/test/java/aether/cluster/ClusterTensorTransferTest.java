package aether.cluster;

import static aether.cluster.ClusterSupport.ask;
import static aether.cluster.ClusterSupport.awaitService;
import static aether.cluster.ClusterSupport.crc32c;
import static aether.cluster.ClusterSupport.hostPort;
import static org.assertj.core.api.Assertions.assertThat;

import aether.cluster.node.AetherNode;
import aether.runtime.exchange.TensorDescriptor;
import aether.runtime.tensor.GgmlType;
import aether.runtime.transfer.TensorService;
import aether.runtime.transfer.TensorService.ChecksumReply;
import aether.runtime.transfer.TensorService.PullReply;
import aether.runtime.transfer.Transport;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Two JVMs form a cluster (this one runs node A in-process, a child process runs node B with {@code aether node}) and
 * move a 64 MiB tensor both ways, the bytes on Aeron: IPC (each node's sender attaches to the other's media driver)
 * when the transport is left to choose, UDP on loopback when forced. Checksums are computed where the bytes are.
 * Then B gets SIGTERM: it leaves the cluster and deletes its media driver directory.
 */
@Timeout(120)
class ClusterTensorTransferTest {

    static final Duration ASK = Duration.ofSeconds(60);

    AetherNode local;
    NodeProcess remote;
    Arena arena = Arena.ofShared();

    @AfterEach
    void tearDown() throws Exception {
        try {
            if (local != null) {
                local.close();      // first, so that it leaves while its peer still runs (no downing wait)
            }
        } finally {
            if (remote != null) {
                remote.close();
            }
            arena.close();
        }
    }

    private ActorRef<TensorService.Command> startPair(String transport) throws Exception {
        local = ClusterSupport.startLocal(Map.of("aether.exchange.transport", transport, "aether.node.cpu-workers", 0));
        remote = NodeProcess.start(ClusterSupport.testFlags(), "--port", "0", "--seed", hostPort(local.nodeId()),
                "--transport", transport, "--cpu-threads", "1");
        String remoteId = remote.awaitReady(Duration.ofSeconds(60));
        return awaitService(local, TensorService.KEY, remoteId, Duration.ofSeconds(30));
    }

    private MemorySegment randomF32(int rows, int cols, long seed) {
        MemorySegment data = arena.allocate((long) rows * cols * Float.BYTES, 64);
        SplittableRandom random = new SplittableRandom(seed);
        for (long i = 0; i < (long) rows * cols; i++) {
            data.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) random.nextGaussian());
        }
        return data;
    }

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"AUTO", "UDP"})
    void shouldMoveA64MiBTensorBothWaysBetweenTwoJvms(Transport transport) throws Exception {
        ActorRef<TensorService.Command> remoteService = startPair(transport.name().toLowerCase());
        Transport expected = transport == Transport.AUTO ? Transport.IPC : Transport.UDP;
        MemorySegment payload = randomF32(4096, 4096, 42);      // 64 MiB: ~1,000 Aeron frames
        int crc = crc32c(payload);
        TensorDescriptor mine = local.store().put(TensorDescriptor.of(7, 3, GgmlType.F32, List.of(4096L, 4096L),
                TensorDescriptor.Location.local(local.nodeId())), payload);

        PullReply there = ask(local, remoteService, (ActorRef<PullReply> r) -> new TensorService.Pull(mine, r), ASK);
        assertThat(there).as("node B pulls A's tensor").isInstanceOf(TensorService.Pulled.class);
        var pulled = (TensorService.Pulled) there;
        assertThat(pulled.transport()).isEqualTo(expected);
        assertThat(pulled.fromNode()).isEqualTo(local.nodeId());
        assertThat(pulled.tensor().location().nodeId()).isEqualTo(remote.nodeId());
        assertThat(pulled.tensor().byteLength()).isEqualTo(64L << 20);

        ChecksumReply sum = ask(local, remoteService, (ActorRef<ChecksumReply> r) -> new TensorService.Checksum(7, 3, r), ASK);
        assertThat(sum.present()).isTrue();
        assertThat(sum.byteLength()).isEqualTo(64L << 20);
        assertThat(sum.crc32c()).as("CRC32C computed in node B's JVM over what it received").isEqualTo(crc);

        // and back: A forgets its copy and pulls B's
        assertThat(local.store().remove(7, 3)).isTrue();
        PullReply back = ask(local, local.tensorService(),
                (ActorRef<PullReply> r) -> new TensorService.Pull(pulled.tensor(), r), ASK);
        assertThat(back).as("node A pulls B's copy").isInstanceOf(TensorService.Pulled.class);
        assertThat(((TensorService.Pulled) back).transport()).isEqualTo(expected);
        MemorySegment returned = local.store().get(7, 3).orElseThrow().data();
        assertThat(returned.mismatch(payload)).as("first differing byte after the round trip").isEqualTo(-1L);

        TensorService.TransferStats stats = ask(local, local.tensorService(),
                (ActorRef<TensorService.TransferStats> r) -> new TensorService.GetStats(r), ASK);
        boolean ipc = expected == Transport.IPC;
        assertThat(ipc ? stats.bytesOutIpc() : stats.bytesOutUdp()).as("bytes A sent over %s", expected)
                .isEqualTo(64L << 20);
        assertThat(ipc ? stats.bytesInIpc() : stats.bytesInUdp()).as("bytes A received over %s", expected)
                .isEqualTo(64L << 20);
        assertThat(ipc ? stats.bytesOutUdp() + stats.bytesInUdp() : stats.bytesOutIpc() + stats.bytesInIpc())
                .as("bytes over the other transport").isZero();

        // SIGTERM: B leaves the cluster and its media driver directory goes away
        assertThat(Files.isDirectory(remote.aeronDir())).isTrue();
        assertThat(remote.terminate(Duration.ofSeconds(30))).as("exit code; it said:%n%s", remote.output())
                .isNotEqualTo(-1);
        assertThat(Files.exists(remote.aeronDir())).as("media driver directory after SIGTERM").isFalse();
        awaitMembers(1, Duration.ofSeconds(20));
        assertThat(remote.output()).doesNotContain("ERROR");
    }

    private void awaitMembers(int expected, Duration limit) throws InterruptedException {
        assertThat(ClusterSupport.awaitMembers(local, expected, limit)).as("cluster members").isEqualTo(expected);
    }
}
