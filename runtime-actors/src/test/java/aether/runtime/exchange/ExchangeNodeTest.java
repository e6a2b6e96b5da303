package aether.runtime.exchange;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.exchange.TensorTransferException.Reason;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Life cycle of a node: what it starts, and that closing it leaves nothing behind. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ExchangeNodeTest {

    @Test
    void shouldLeaveNoThreadsAndNoDirectoryBehindWhenClosed() throws Exception {
        Set<Thread> before = new HashSet<>(Thread.getAllStackTraces().keySet());
        Path dir;
        try (Arena arena = Arena.ofShared()) {
            ExchangeNode node = ExchangeNode.launchEmbedded(ExchangeConfig.defaults());
            dir = Path.of(node.aeronDirectory());
            assertThat(node.embedded()).isTrue();
            assertThat(dir).isDirectory();
            TensorReceiver receiver = node.newReceiver(ExchangeChannels.ipc(), 5, TensorAllocator.of(arena));
            TensorSender sender = node.newSender(ExchangeChannels.ipc(), 5);
            MemorySegment payload = Payloads.random(arena, 200_000, 1);
            CompletableFuture<MemorySegment> received = receiver.expect(1, 1, Duration.ofSeconds(30));
            sender.send(1, 1, payload).get(30, TimeUnit.SECONDS);
            assertThat(received.get(30, TimeUnit.SECONDS).mismatch(payload)).isEqualTo(-1L);
            assertThat(newThreads(before)).as("the node's threads while it runs")
                    .anyMatch(t -> t.getName().equals("aether-exchange"));
            node.close();
            node.close();   // idempotent
        }
        List<Thread> left = List.of();
        for (int i = 0; i < 500; i++) {     // close() joins its threads; Aeron's may take a moment to exit
            left = newThreads(before);
            if (left.isEmpty()) {
                break;
            }
            Thread.sleep(10);
        }
        assertThat(left).as("threads started by the node and still alive after close").isEmpty();
        assertThat(Files.exists(dir)).as("aeron directory %s deleted", dir).isFalse();
    }

    private static List<Thread> newThreads(Set<Thread> before) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> !before.contains(t) && t.isAlive())
                .filter(t -> !t.getName().startsWith("ForkJoinPool.commonPool")
                        && !t.getName().equals("CompletableFutureDelayScheduler"))   // the JDK's shared, lazily started
                .toList();
    }

    @Test
    void shouldFailPendingTransfersAndRefuseNewOnesOnceClosed() {
        ExchangeNode node = ExchangeNode.launchEmbedded(ExchangeConfig.defaults());
        TensorReceiver receiver;
        TensorSender sender;
        CompletableFuture<MemorySegment> pending;
        try (Arena arena = Arena.ofShared()) {
            receiver = node.newReceiver(ExchangeChannels.ipc(), 6, TensorAllocator.of(arena));
            sender = node.newSender(ExchangeChannels.ipc(), 6);
            pending = receiver.expect(42, 1, Duration.ofSeconds(30));
            node.close();
            assertThatThrownBy(() -> pending.get(10, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.CLOSED));
            assertThatThrownBy(() -> sender.send(1, 1, arena.allocate(10)).get(10, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.CLOSED));
            assertThatThrownBy(() -> receiver.expect(43, 1, Duration.ofSeconds(1)).get(10, TimeUnit.SECONDS)).cause()
                    .isInstanceOf(TensorTransferException.class);
            assertThatThrownBy(() -> node.newSender(ExchangeChannels.ipc(), 7))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
        }
    }

    @Test
    void shouldFailOnlyTheClosedReceiversExpectations() throws Exception {
        try (ExchangeNode node = ExchangeNode.launchEmbedded(ExchangeConfig.defaults());
                Arena arena = Arena.ofShared()) {
            TensorReceiver closing = node.newReceiver(ExchangeChannels.ipc(), 8, TensorAllocator.of(arena));
            TensorReceiver staying = node.newReceiver(ExchangeChannels.ipc(), 9, TensorAllocator.of(arena));
            TensorSender sender = node.newSender(ExchangeChannels.ipc(), 9);
            CompletableFuture<MemorySegment> lost = closing.expect(1, 1, Duration.ofSeconds(30));
            closing.close();
            assertThatThrownBy(() -> lost.get(10, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.CLOSED));
            MemorySegment payload = Payloads.random(arena, 70_000, 2);
            CompletableFuture<MemorySegment> kept = staying.expect(2, 1, Duration.ofSeconds(30));
            sender.send(2, 1, payload).get(30, TimeUnit.SECONDS);
            assertThat(kept.get(30, TimeUnit.SECONDS).mismatch(payload)).isEqualTo(-1L);
        }
    }

    @Test
    void shouldExchangeThroughAnotherNodesDriverAndLeaveItRunning() throws Exception {
        try (ExchangeNode owner = ExchangeNode.launchEmbedded(ExchangeConfig.defaults());
                Arena arena = Arena.ofShared()) {
            TensorReceiver receiver = owner.newReceiver(ExchangeChannels.ipc(), 10, TensorAllocator.of(arena));
            MemorySegment payload = Payloads.random(arena, 1 << 20, 3);
            try (ExchangeNode guest = ExchangeNode.connect(owner.aeronDirectory(), ExchangeConfig.defaults())) {
                assertThat(guest.embedded()).isFalse();
                CompletableFuture<MemorySegment> received = receiver.expect(3, 1, Duration.ofSeconds(30));
                guest.newSender(ExchangeChannels.ipc(), 10).send(3, 1, payload).get(30, TimeUnit.SECONDS);
                assertThat(received.get(30, TimeUnit.SECONDS).mismatch(payload)).isEqualTo(-1L);
            }
            assertThat(Path.of(owner.aeronDirectory())).as("the guest does not own the driver").isDirectory();
            TensorSender own = owner.newSender(ExchangeChannels.ipc(), 10);
            CompletableFuture<MemorySegment> again = receiver.expect(3, 2, Duration.ofSeconds(30));
            own.send(3, 2, payload).get(30, TimeUnit.SECONDS);
            assertThat(again.get(30, TimeUnit.SECONDS).mismatch(payload)).isEqualTo(-1L);
        }
    }

    @Test
    void shouldLetAContinuationOnTheAgentThreadCloseASenderWithoutDeadlock() throws Exception {
        try (ExchangeNode node = ExchangeNode.launchEmbedded(ExchangeConfig.defaults());
                Arena arena = Arena.ofShared()) {
            TensorReceiver receiver = node.newReceiver(ExchangeChannels.ipc(), 11, TensorAllocator.of(arena));
            TensorSender sender = node.newSender(ExchangeChannels.ipc(), 11);
            CompletableFuture<MemorySegment> received = receiver.expect(1, 1, Duration.ofSeconds(30));
            CompletableFuture<String> inline = received.thenApply(data -> {     // runs on aether-exchange
                sender.close();
                try {
                    node.newSender(ExchangeChannels.ipc(), 12);
                    return "made a sender";
                } catch (IllegalStateException e) {
                    return e.getMessage();
                }
            });
            sender.send(1, 1, Payloads.random(arena, 100_000, 1)).get(30, TimeUnit.SECONDS);
            assertThat(inline.get(30, TimeUnit.SECONDS)).contains("exchange's own thread");
            assertThatThrownBy(() -> sender.send(2, 1, arena.allocate(8)).get(30, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.CLOSED));
            TensorSender next = node.newSender(ExchangeChannels.ipc(), 11);     // the node is still serving
            CompletableFuture<MemorySegment> again = receiver.expect(3, 1, Duration.ofSeconds(30));
            next.send(3, 1, arena.allocate(10)).get(30, TimeUnit.SECONDS);
            assertThat(again.get(30, TimeUnit.SECONDS).byteSize()).isEqualTo(10);
        }
    }

    @Test
    void shouldRejectInvalidSettings() {
        assertThatThrownBy(() -> ExchangeConfig.defaults().withSendTimeout(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("sendTimeout");
        assertThatThrownBy(() -> ExchangeChannels.udp("127.0.0.1", 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("port: 0");
    }
}
