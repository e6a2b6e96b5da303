package aether.runtime.exchange;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.exchange.TensorTransferException.Reason;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 30, unit = TimeUnit.SECONDS)
class LocalHandOffTest {

    @Test
    void shouldHandOverTheSameSegmentWhetherExpectedBeforeOrAfter() throws Exception {
        try (Arena arena = Arena.ofConfined(); LocalHandOff handOff = new LocalHandOff()) {
            MemorySegment a = Payloads.random(arena, 4096, 1);
            MemorySegment b = Payloads.random(arena, 0, 2);
            CompletableFuture<MemorySegment> early = handOff.expect(1, 1, Duration.ofSeconds(5));
            assertThat(early).isNotDone();
            handOff.send(1, 1, a).get();
            handOff.send(2, 7, b).get();
            assertThat(early.get()).isSameAs(a);
            assertThat(handOff.expect(2, 7, (t, v, n) -> {
                throw new AssertionError("a hand-off never allocates");
            }, Duration.ofSeconds(5)).get()).isSameAs(b);
        }
    }

    @Test
    void shouldKeepVersionsApart() throws Exception {
        try (Arena arena = Arena.ofConfined(); LocalHandOff handOff = new LocalHandOff()) {
            MemorySegment v1 = arena.allocate(8);
            MemorySegment v2 = arena.allocate(8);
            handOff.send(5, 2, v2);
            handOff.send(5, 1, v1);
            assertThat(handOff.expect(5, 1, Duration.ofSeconds(1)).get()).isSameAs(v1);
            assertThat(handOff.expect(5, 2, Duration.ofSeconds(1)).get()).isSameAs(v2);
        }
    }

    @Test
    void shouldTimeOutAndThenFailOnClose() {
        LocalHandOff handOff = new LocalHandOff();
        CompletableFuture<MemorySegment> late = handOff.expect(1, 1, Duration.ofMillis(50));
        assertThatThrownBy(() -> late.get(10, TimeUnit.SECONDS)).cause()
                .isInstanceOfSatisfying(TensorTransferException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.TIMEOUT));
        CompletableFuture<MemorySegment> pending = handOff.expect(2, 1, Duration.ofSeconds(10));
        handOff.close();
        assertThatThrownBy(() -> pending.get(10, TimeUnit.SECONDS)).cause()
                .isInstanceOfSatisfying(TensorTransferException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.CLOSED));
        assertThat(handOff.send(3, 1, MemorySegment.NULL)).isCompletedExceptionally();
    }

    @Test
    void shouldBeUsableWhereverAnAeronPairIs() throws Exception {
        // the API shape is the point: a caller holds a TensorSender and a TensorReceiver, wherever the peer is
        try (Arena arena = Arena.ofConfined(); LocalHandOff handOff = new LocalHandOff()) {
            TensorSender sender = handOff;
            TensorReceiver receiver = handOff;
            MemorySegment payload = Payloads.random(arena, 1 << 20, 9);
            CompletableFuture<MemorySegment> got = receiver.expect(9, 1, TensorAllocator.of(arena), Duration.ofSeconds(1));
            sender.send(9, 1, payload).get();
            assertThat(got.get().address()).as("zero copy").isEqualTo(payload.address());
        }
    }
}
