package aether.runtime.exchange;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.exchange.TensorTransferException.Reason;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Transfers through a real embedded media driver, over IPC and over UDP on 127.0.0.1. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AeronExchangeTest {

    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final AtomicInteger STREAMS = new AtomicInteger(2000);
    private static final AtomicLong IDS = new AtomicLong(1);

    private static Arena arena;
    private static ExchangeNode node;
    private static String udpChannel;
    private static TensorSender ipcSender;
    private static TensorReceiver ipcReceiver;
    private static TensorSender udpSender;
    private static TensorReceiver udpReceiver;

    @BeforeAll
    static void startNode() {
        arena = Arena.ofShared();
        node = ExchangeNode.launchEmbedded(ExchangeConfig.defaults());
        ipcReceiver = node.newReceiver(ExchangeChannels.ipc(), 1001, TensorAllocator.of(arena));
        ipcSender = node.newSender(ExchangeChannels.ipc(), 1001);
        udpChannel = ExchangeChannels.udp("127.0.0.1", Payloads.freeUdpPort());
        udpReceiver = node.newReceiver(udpChannel, 1002, TensorAllocator.of(arena));
        udpSender = node.newSender(udpChannel, 1002);
    }

    @AfterAll
    static void stopNode() {
        if (node != null) {
            node.close();
            assertThat(node.errorCount()).as("errors reported by Aeron or the agent").isZero();
        }
        if (arena != null) {
            arena.close();
        }
    }

    @ParameterizedTest(name = "{0} bytes")
    @ValueSource(longs = {0, 1, 4095, 65424, 65425, 1 << 20, (64 << 20) + 17})
    void shouldRoundTripRandomBytesOverIpc(long size) throws Exception {
        roundTrip(ipcSender, ipcReceiver, size);
    }

    @ParameterizedTest(name = "{0} bytes")
    @ValueSource(longs = {0, 1, 4095, 65424, 65425, 1 << 20, 64 << 20})
    void shouldRoundTripRandomBytesOverUdpLoopback(long size) throws Exception {
        roundTrip(udpSender, udpReceiver, size);
    }

    /** 5 GiB of memory and a few seconds: opt in with {@code -Daether.exchange.large=true}. */
    @Test
    @Timeout(value = 600, unit = TimeUnit.SECONDS)
    void shouldRoundTripAPayloadLargerThanTwoGiB() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(Boolean.getBoolean("aether.exchange.large"),
                "needs -Daether.exchange.large=true (allocates 5 GiB)");
        roundTrip(ipcSender, ipcReceiver, (5L << 29) + 12_345);     // 2.5 GiB: offsets past Integer.MAX_VALUE
    }

    private static void roundTrip(TensorSender sender, TensorReceiver receiver, long size) throws Exception {
        long id = IDS.getAndIncrement();
        long seed = 0x5eed0000L + id;
        try (Arena local = Arena.ofShared()) {
            MemorySegment payload = Payloads.random(local, size, seed);
            long expectedCrc = Payloads.crc32c(payload);
            CompletableFuture<MemorySegment> received = receiver.expect(id, 3, TensorAllocator.of(local), WAIT);
            sender.send(id, 3, payload).get(60, TimeUnit.SECONDS);
            MemorySegment data = received.get(60, TimeUnit.SECONDS);
            assertThat(data.byteSize()).isEqualTo(size);
            assertThat(data.address()).as("a copy, not the sender's segment").isNotEqualTo(payload.address());
            assertThat(Payloads.crc32c(data)).as("CRC32C, seed %x", seed).isEqualTo(expectedCrc);
            assertThat(data.mismatch(payload)).as("first differing byte, seed %x", seed).isEqualTo(-1L);
        }
    }

    @Test
    void shouldDeliverIntoTheExpectingCallersAllocator() throws Exception {
        long id = IDS.getAndIncrement();
        List<Long> asked = new CopyOnWriteArrayList<>();
        try (Arena local = Arena.ofShared()) {
            MemorySegment payload = Payloads.random(local, 300_000, id);
            MemorySegment mine = local.allocate(400_000);
            CompletableFuture<MemorySegment> received = ipcReceiver.expect(id, 1, (t, v, length) -> {
                asked.add(length);
                return mine;
            }, WAIT);
            ipcSender.send(id, 1, payload).get(60, TimeUnit.SECONDS);
            MemorySegment data = received.get(60, TimeUnit.SECONDS);
            assertThat(asked).containsExactly(300_000L);
            assertThat(data.address()).isEqualTo(mine.address());
            assertThat(data.byteSize()).as("sliced to the payload length").isEqualTo(300_000L);
            assertThat(data.mismatch(payload)).isEqualTo(-1L);
        }
    }

    @Test
    void shouldKeepATransferThatArrivesBeforeItIsExpected() throws Exception {
        int stream = STREAMS.getAndIncrement();
        long id = IDS.getAndIncrement();
        try (Arena local = Arena.ofShared();
                AeronTensorReceiver receiver = node.newAeronReceiver(ExchangeChannels.ipc(), stream,
                        TensorAllocator.of(local));
                TensorSender sender = node.newSender(ExchangeChannels.ipc(), stream)) {
            MemorySegment payload = Payloads.random(local, 1_000_000, id);
            sender.send(id, 9, payload).get(60, TimeUnit.SECONDS);
            while (receiver.unclaimed() == 0) {     // the whole payload is in, and nobody asked for it yet
                Thread.sleep(1);
            }
            MemorySegment data = receiver.expect(id, 9, WAIT).get(60, TimeUnit.SECONDS);
            assertThat(data.mismatch(payload)).isEqualTo(-1L);
            assertThat(receiver.unclaimed()).isZero();
        }
    }

    @Test
    void shouldReassembleConcurrentTransfersInterleavedOnOneStream() throws Exception {
        int stream = STREAMS.getAndIncrement();
        List<Long> frameOrder = new CopyOnWriteArrayList<>();
        try (Arena local = Arena.ofShared();
                TensorReceiver receiver = node.newReceiver(ExchangeChannels.ipc(), stream, TensorAllocator.of(local));
                AeronTensorSender sender = node.newAeronSender(ExchangeChannels.ipc(), stream)) {
            sender.hook((t, v, at, chunk, frame, offset) -> frameOrder.add(t));
            long[] sizes = {3 << 20, 1, 700_001, 0, 5 << 20, 65_424 * 3, 2 << 20, 12_345};
            List<MemorySegment> payloads = new ArrayList<>();
            List<CompletableFuture<MemorySegment>> results = new ArrayList<>();
            List<CompletableFuture<Void>> sends = new ArrayList<>();
            long base = IDS.getAndAdd(sizes.length);
            for (int i = 0; i < sizes.length; i++) {
                payloads.add(Payloads.random(local, sizes[i], base + i));
                results.add(receiver.expect(base + i, 1, WAIT));
            }
            Thread other = Thread.ofPlatform().start(() -> {    // two threads enqueue sends at once
                for (int i = 1; i < sizes.length; i += 2) {
                    synchronized (sends) {
                        sends.add(sender.send(base + i, 1, payloads.get(i)));
                    }
                }
            });
            for (int i = 0; i < sizes.length; i += 2) {
                synchronized (sends) {
                    sends.add(sender.send(base + i, 1, payloads.get(i)));
                }
            }
            other.join();
            CompletableFuture.allOf(sends.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
            for (int i = 0; i < sizes.length; i++) {
                MemorySegment data = results.get(i).get(60, TimeUnit.SECONDS);
                assertThat(data.byteSize()).isEqualTo(sizes[i]);
                assertThat(data.mismatch(payloads.get(i))).as("tensor %d", base + i).isEqualTo(-1L);
            }
            assertThat(switches(frameOrder)).as("frames of different tensors interleave on the stream")
                    .isGreaterThan(sizes.length);
        }
    }

    @Test
    void shouldReassembleManyTransfersSentOneFrameAtATimeOverUdp() throws Exception {
        var d = ExchangeConfig.defaults();
        var oneFramePerTurn = new ExchangeConfig(null, d.sendTimeout(), d.transferTimeout(), d.unclaimedRetention(), 1,
                d.maxIdle());
        String channel = ExchangeChannels.udp("127.0.0.1", Payloads.freeUdpPort());
        var random = new java.util.SplittableRandom(20261122);
        try (ExchangeNode other = ExchangeNode.launchEmbedded(oneFramePerTurn);
                Arena local = Arena.ofShared();
                TensorReceiver receiver = node.newReceiver(channel, 3000, TensorAllocator.of(local));
                TensorSender sender = other.newSender(channel, 3000)) {
            int count = 24;
            long base = IDS.getAndAdd(count);
            List<MemorySegment> payloads = new ArrayList<>();
            List<CompletableFuture<MemorySegment>> results = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                payloads.add(Payloads.random(local, random.nextLong(0, 600_000), base + i));
                if (i % 2 == 0) {   // half expected before they start, half after (parked or in flight)
                    results.add(receiver.expect(base + i, 1, WAIT));
                }
            }
            List<CompletableFuture<Void>> sends = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                sends.add(sender.send(base + i, 1, payloads.get(i)));
            }
            for (int i = 1; i < count; i += 2) {
                results.add(i, receiver.expect(base + i, 1, WAIT));
            }
            CompletableFuture.allOf(sends.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
            for (int i = 0; i < count; i++) {
                assertThat(results.get(i).get(60, TimeUnit.SECONDS).mismatch(payloads.get(i)))
                        .as("tensor %d of %,d bytes", base + i, payloads.get(i).byteSize()).isEqualTo(-1L);
            }
            assertThat(other.errorCount()).isZero();
        }
    }

    private static int switches(List<Long> order) {
        int switches = 0;
        for (int i = 1; i < order.size(); i++) {
            if (!order.get(i).equals(order.get(i - 1))) {
                switches++;
            }
        }
        return switches;
    }

    @Test
    void shouldSendPayloadsThatSpanSeveralByteBufferWindows() throws Exception {
        int stream = STREAMS.getAndIncrement();
        long id = IDS.getAndIncrement();
        try (Arena local = Arena.ofShared();
                TensorReceiver receiver = node.newReceiver(ExchangeChannels.ipc(), stream, TensorAllocator.of(local));
                AeronTensorSender sender = node.newAeronSender(ExchangeChannels.ipc(), stream)) {
            sender.windowShift(20);     // 1 MiB windows: a 5.5 MiB payload crosses five boundaries mid-chunk
            MemorySegment payload = Payloads.random(local, (11L << 19) + 3, id);
            CompletableFuture<MemorySegment> received = receiver.expect(id, 1, WAIT);
            sender.send(id, 1, payload).get(60, TimeUnit.SECONDS);
            assertThat(received.get(60, TimeUnit.SECONDS).mismatch(payload)).isEqualTo(-1L);
        }
    }

    @Test
    void shouldFailWithTimeoutWhenTheTailNeverArrives() throws Exception {
        int stream = STREAMS.getAndIncrement();
        long id = IDS.getAndIncrement();
        try (Arena local = Arena.ofShared();
                TensorReceiver receiver = node.newReceiver(ExchangeChannels.ipc(), stream, TensorAllocator.of(local));
                AeronTensorSender sender = node.newAeronSender(ExchangeChannels.ipc(), stream)) {
            long size = 1 << 20;
            long lastChunkAt = size - size % sender.maxChunkLength();
            sender.hook((t, v, at, chunk, frame, offset) -> at != lastChunkAt);   // lose the tail frame
            MemorySegment payload = Payloads.random(local, size, id);
            CompletableFuture<MemorySegment> received = receiver.expect(id, 1, Duration.ofMillis(500));
            sender.send(id, 1, payload).get(60, TimeUnit.SECONDS);
            assertThatThrownBy(() -> received.get(60, TimeUnit.SECONDS))
                    .isInstanceOf(ExecutionException.class)
                    .cause().isInstanceOfSatisfying(TensorTransferException.class, e -> {
                        assertThat(e.reason()).isEqualTo(Reason.TIMEOUT);
                        assertThat(e.tensorId()).isEqualTo(id);
                        assertThat(e.getMessage()).contains("received %,d of %,d bytes".formatted(lastChunkAt, size));
                    });
        }
    }

    @Test
    void shouldNotAllocatePerFrameOnceWarm() throws Exception {
        var threads = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long agent = node.agentThread().threadId();
        try (Arena local = Arena.ofShared()) {
            MemorySegment big = Payloads.random(local, 16 << 20, 1);
            MemorySegment small = Payloads.random(local, 64 << 10, 2);
            MemorySegment destination = local.allocate(big.byteSize());
            TensorAllocator reuse = (t, v, n) -> destination;
            for (int i = 0; i < 30; i++) {      // warm: the JIT's escape analysis is part of the contract
                transfer(big, reuse);
                transfer(small, reuse);
            }
            long before = threads.getThreadAllocatedBytes(agent);
            for (int i = 0; i < 10; i++) {
                transfer(small, reuse);
            }
            long smallBytes = threads.getThreadAllocatedBytes(agent) - before;
            before = threads.getThreadAllocatedBytes(agent);
            for (int i = 0; i < 10; i++) {
                transfer(big, reuse);
            }
            long bigBytes = threads.getThreadAllocatedBytes(agent) - before;
            long extraFrames = 10 * ((big.byteSize() - small.byteSize()) / 65_000);   // ~2,500 more frames
            assertThat((double) (bigBytes - smallBytes) / extraFrames)
                    .as("bytes allocated per extra frame on the agent thread (%,d for 10 small, %,d for 10 big)",
                            smallBytes, bigBytes)
                    .isLessThan(4.0);
        }
    }

    private static void transfer(MemorySegment payload, TensorAllocator allocator) throws Exception {
        long id = IDS.getAndIncrement();
        CompletableFuture<MemorySegment> received = ipcReceiver.expect(id, 1, allocator, WAIT);
        ipcSender.send(id, 1, payload).get(60, TimeUnit.SECONDS);
        received.get(60, TimeUnit.SECONDS);
    }

    @ParameterizedTest(name = "frame {0} lost")
    @ValueSource(ints = {0, 5})
    void shouldFailAsAProtocolErrorWhenAFrameBeforeTheTailIsLost(int lostFrame) throws Exception {
        int stream = STREAMS.getAndIncrement();
        long id = IDS.getAndIncrement();
        try (Arena local = Arena.ofShared();
                TensorReceiver receiver = node.newReceiver(ExchangeChannels.ipc(), stream, TensorAllocator.of(local));
                AeronTensorSender sender = node.newAeronSender(ExchangeChannels.ipc(), stream)) {
            long lostAt = (long) lostFrame * sender.maxChunkLength();
            sender.hook((t, v, at, chunk, frame, offset) -> at != lostAt);
            CompletableFuture<MemorySegment> received = receiver.expect(id, 1, WAIT);
            sender.send(id, 1, Payloads.random(local, 1 << 20, id)).get(60, TimeUnit.SECONDS);
            assertThatThrownBy(() -> received.get(60, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class, e -> {
                        assertThat(e.reason()).isEqualTo(Reason.PROTOCOL);
                        assertThat(e.getMessage()).contains(lostFrame == 0
                                ? "joined the transfer at byte %,d".formatted(sender.maxChunkLength())
                                : "expected: bytes from %,d".formatted(lostAt));
                    });
        }
    }

    @Test
    void shouldTimeOutAnExpectationThatNoFrameAnswers() {
        long id = IDS.getAndIncrement();
        CompletableFuture<MemorySegment> received = ipcReceiver.expect(id, 1, Duration.ofMillis(200));
        assertThatThrownBy(() -> received.get(60, TimeUnit.SECONDS)).cause()
                .isInstanceOfSatisfying(TensorTransferException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.TIMEOUT));
    }

    @Test
    void shouldDetectACorruptedFrameAndStillDeliverTheNextTransfer() throws Exception {
        int stream = STREAMS.getAndIncrement();
        long id = IDS.getAndIncrement();
        try (Arena local = Arena.ofShared();
                TensorReceiver receiver = node.newReceiver(ExchangeChannels.ipc(), stream, TensorAllocator.of(local));
                AeronTensorSender sender = node.newAeronSender(ExchangeChannels.ipc(), stream)) {
            long corruptAt = 3L * sender.maxChunkLength();
            sender.hook((t, v, at, chunk, frame, offset) -> {
                if (t == id && at == corruptAt) {     // one bit flipped after the CRC was computed: a bad wire
                    int i = offset + FrameDescriptor.HEADER_LENGTH + 1000;
                    frame.putByte(i, (byte) (frame.getByte(i) ^ 0x10));
                }
                return true;
            });
            MemorySegment payload = Payloads.random(local, 1 << 20, id);
            CompletableFuture<MemorySegment> bad = receiver.expect(id, 1, WAIT);
            CompletableFuture<MemorySegment> good = receiver.expect(id + 1_000_000, 1, WAIT);
            sender.send(id, 1, payload).get(60, TimeUnit.SECONDS);
            sender.send(id + 1_000_000, 1, payload).get(60, TimeUnit.SECONDS);
            assertThatThrownBy(() -> bad.get(60, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class, e -> {
                        assertThat(e.reason()).isEqualTo(Reason.CHECKSUM);
                        assertThat(e.getMessage()).contains("CRC32C mismatch")
                                .contains("[%,d, %,d)".formatted(corruptAt, corruptAt + sender.maxChunkLength()));
                    });
            assertThat(good.get(60, TimeUnit.SECONDS).mismatch(payload)).isEqualTo(-1L);
        }
    }

    @Test
    void shouldDetectACorruptedHeaderField() throws Exception {
        int stream = STREAMS.getAndIncrement();
        long id = IDS.getAndIncrement();
        try (Arena local = Arena.ofShared();
                TensorReceiver receiver = node.newReceiver(ExchangeChannels.ipc(), stream, TensorAllocator.of(local));
                AeronTensorSender sender = node.newAeronSender(ExchangeChannels.ipc(), stream)) {
            long corruptAt = 2L * sender.maxChunkLength();
            sender.hook((t, v, at, chunk, frame, offset) -> {
                if (at == corruptAt) {     // an offset that would land the chunk elsewhere in the destination
                    frame.putLong(offset + FrameDescriptor.PAYLOAD_OFFSET_OFFSET, at + 8, FrameDescriptor.ORDER);
                }
                return true;
            });
            CompletableFuture<MemorySegment> bad = receiver.expect(id, 1, WAIT);
            sender.send(id, 1, Payloads.random(local, 1 << 20, id)).get(60, TimeUnit.SECONDS);
            assertThatThrownBy(() -> bad.get(60, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.CHECKSUM));
        }
    }

    @Test
    void shouldFailASendThatNoSubscriberEverConnectsTo() {
        try (ExchangeNode lonely = ExchangeNode.launchEmbedded(
                ExchangeConfig.defaults().withSendTimeout(Duration.ofMillis(300)));
                TensorSender sender = lonely.newSender(ExchangeChannels.ipc(), 77);
                Arena local = Arena.ofShared()) {
            CompletableFuture<Void> sent = sender.send(1, 1, local.allocate(100));
            assertThatThrownBy(() -> sent.get(60, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class, e -> {
                        assertThat(e.reason()).isEqualTo(Reason.NOT_CONNECTED);
                        assertThat(e.getMessage()).contains("no subscriber connected within 300 ms");
                    });
        }
    }

    @Test
    void shouldFailWhenTheAllocatorGivesTooLittleMemory() throws Exception {
        long id = IDS.getAndIncrement();
        try (Arena local = Arena.ofShared()) {
            CompletableFuture<MemorySegment> received =
                    ipcReceiver.expect(id, 1, (t, v, length) -> local.allocate(length - 1), WAIT);
            ipcSender.send(id, 1, Payloads.random(local, 5000, id)).get(60, TimeUnit.SECONDS);
            assertThatThrownBy(() -> received.get(60, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class, e -> {
                        assertThat(e.reason()).isEqualTo(Reason.ALLOCATION);
                        assertThat(e.getMessage()).contains("at least 5,000 bytes");
                    });
        }
    }

    @Test
    void shouldRejectAHeapPayloadThatIsNotBytes() {
        CompletableFuture<Void> sent = ipcSender.send(1, 1, MemorySegment.ofArray(new float[16]));
        assertThatThrownBy(() -> sent.get(10, TimeUnit.SECONDS)).cause()
                .isInstanceOfSatisfying(TensorTransferException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.UNSUPPORTED_PAYLOAD));
    }

    @Test
    void shouldRejectAPayloadConfinedToTheCallingThread() {
        try (Arena confined = Arena.ofConfined()) {
            CompletableFuture<Void> sent = ipcSender.send(1, 1, confined.allocate(64));
            assertThatThrownBy(() -> sent.get(10, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class, e -> {
                        assertThat(e.reason()).isEqualTo(Reason.UNSUPPORTED_PAYLOAD);
                        assertThat(e.getMessage()).contains("confined");
                    });
        }
    }

    @Test
    void shouldFailWhenTheAllocatorGivesMemoryConfinedToAnotherThread() {
        long id = IDS.getAndIncrement();
        try (Arena confined = Arena.ofConfined(); Arena local = Arena.ofShared()) {
            MemorySegment foreign = confined.allocate(5000);
            CompletableFuture<MemorySegment> received = ipcReceiver.expect(id, 1, (t, v, n) -> foreign, WAIT);
            ipcSender.send(id, 1, Payloads.random(local, 5000, id));
            assertThatThrownBy(() -> received.get(60, TimeUnit.SECONDS)).cause()
                    .isInstanceOfSatisfying(TensorTransferException.class,
                            e -> assertThat(e.reason()).isEqualTo(Reason.ALLOCATION));
        }
    }

    @Test
    void shouldGiveEveryExpectOfOneTransferTheSameSegment() throws Exception {
        long id = IDS.getAndIncrement();
        try (Arena local = Arena.ofShared()) {
            MemorySegment payload = Payloads.random(local, 200_000, id);
            CompletableFuture<MemorySegment> first = ipcReceiver.expect(id, 1, WAIT);
            CompletableFuture<MemorySegment> second = ipcReceiver.expect(id, 1, WAIT);
            ipcSender.send(id, 1, payload).get(60, TimeUnit.SECONDS);
            assertThat(first.get(60, TimeUnit.SECONDS).mismatch(payload)).isEqualTo(-1L);
            assertThat(second.get(60, TimeUnit.SECONDS).address()).isEqualTo(first.get().address());
        }
    }

    @Test
    void shouldSendAHeapByteArrayPayload() throws Exception {
        long id = IDS.getAndIncrement();
        byte[] bytes = new byte[100_003];
        new java.util.SplittableRandom(id).nextBytes(bytes);
        CompletableFuture<MemorySegment> received = ipcReceiver.expect(id, 1, WAIT);
        ipcSender.send(id, 1, MemorySegment.ofArray(bytes)).get(60, TimeUnit.SECONDS);
        MemorySegment data = received.get(60, TimeUnit.SECONDS);
        assertThat(data.toArray(ValueLayout.JAVA_BYTE)).isEqualTo(bytes);
    }
}
