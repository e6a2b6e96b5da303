package aether.runtime.exchange;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Bytes cross a process boundary over Aeron IPC: a second JVM receives tensors from our driver and echoes them. */
class CrossProcessIpcTest {

    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void shouldEchoTensorsThroughAnotherJvm() throws Exception {
        long[] sizes = {0, 1, 4095, 1 << 20, 64 << 20};
        Duration wait = Duration.ofSeconds(60);
        try (Arena arena = Arena.ofShared();
                ExchangeNode node = ExchangeNode.launchEmbedded(ExchangeConfig.defaults().withSendTimeout(wait));
                TensorReceiver back = node.newReceiver(ExchangeChannels.ipc(), 3002, TensorAllocator.of(arena));
                TensorSender out = node.newSender(ExchangeChannels.ipc(), 3001);
                PeerProcess peer = PeerProcess.start(node.aeronDirectory(), "3001", "3002", "echo",
                        Integer.toString(sizes.length), Long.toString(wait.toMillis()))) {
            assertThat(peer.pid()).isNotEqualTo(ProcessHandle.current().pid());
            for (int i = 0; i < sizes.length; i++) {
                MemorySegment payload = Payloads.random(arena, sizes[i], 0xC0FFEE + i);
                CompletableFuture<MemorySegment> echoed = back.expect(i, 2, wait);
                out.send(i, 1, payload).get(60, TimeUnit.SECONDS);
                MemorySegment data = echoed.get(60, TimeUnit.SECONDS);
                assertThat(data.byteSize()).as("size of tensor %d; peer said:%n%s", i, peer.output()).isEqualTo(sizes[i]);
                assertThat(data.mismatch(payload)).as("first differing byte of tensor %d", i).isEqualTo(-1L);
                String crc = "tensor %d: %d bytes, crc32c %08x".formatted(i, sizes[i], Payloads.crc32c(payload));
                assertThat(awaitLine(peer, crc)).as("the peer's own checksum of what it received").contains(crc);
            }
            out.send(-1, 0, MemorySegment.ofArray(new byte[0])).get(60, TimeUnit.SECONDS);
            assertThat(peer.awaitExit(60)).as("peer exit code; it said:%n%s", peer.output()).isZero();
        }
    }

    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void shouldFailATransferWhosePublisherProcessDies() throws Exception {
        long size = 16 << 20;
        try (Arena arena = Arena.ofShared();
                ExchangeNode node = ExchangeNode.launchEmbedded(ExchangeConfig.defaults());
                AeronTensorReceiver in = node.newAeronReceiver(ExchangeChannels.ipc(), 3004, TensorAllocator.of(arena));
                PeerProcess peer = PeerProcess.start(node.aeronDirectory(), "3003", "3004", "die",
                        Long.toString(size), "60000")) {
            // longer than Aeron's client liveness timeout (10 s) plus the publication's linger (5 s)
            CompletableFuture<MemorySegment> received = in.expect(0, 2, Duration.ofSeconds(120));
            assertThat(peer.awaitExit(60)).as("peer exit code; it said:%n%s", peer.output()).isEqualTo(3);
            assertThatThrownBy(() -> received.get(150, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class, e -> {
                        assertThat(e.reason()).isEqualTo(TensorTransferException.Reason.PUBLISHER_GONE);
                        assertThat(e.getMessage()).contains("of 16,777,216 bytes");
                    });
        }
    }

    private static String awaitLine(PeerProcess peer, String line) throws InterruptedException {
        for (int i = 0; i < 1000 && !peer.output().contains(line); i++) {
            Thread.sleep(10);   // the peer prints after its echo is sent; its output file lags a little
        }
        return peer.output();
    }
}
