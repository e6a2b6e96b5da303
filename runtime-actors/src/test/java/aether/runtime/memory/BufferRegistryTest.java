package aether.runtime.memory;

import static aether.runtime.protocol.BufferOrigin.ACTIVATION;
import static aether.runtime.protocol.BufferOrigin.INTERMEDIATE;
import static aether.runtime.protocol.BufferOrigin.WEIGHT;
import static aether.runtime.protocol.EvictionAction.COPY_TO_HOST_THEN_FREE;
import static aether.runtime.protocol.EvictionAction.DROP_MAPPING;
import static aether.runtime.protocol.EvictionAction.FREE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.memory.AllocateReply.Granted;
import aether.runtime.memory.AllocateReply.Rejected;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.MemoryAction;
import aether.runtime.protocol.MemoryAction.Evict;
import aether.runtime.protocol.MemoryAction.Invalidate;
import aether.runtime.protocol.MemoryAction.Prefetch;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class BufferRegistryTest {
    static final Location HOST = Location.HOST;
    static final Location GPU = Location.device(0);
    static final BufferId A = new BufferId(1);
    static final BufferId B = new BufferId(2);
    static final BufferId C = new BufferId(3);
    static final BufferId D = new BufferId(4);

    private static BufferRegistry registry(long gpuBudget) {
        return new BufferRegistry(Map.of(GPU, gpuBudget));
    }

    private static Granted granted(AllocateReply reply) {
        assertThat(reply).isInstanceOf(Granted.class);
        return (Granted) reply;
    }

    @Test
    void shouldEvictLeastRecentlyUsedCopiesFirstWhenAnAllocationPassesTheBudget() {
        BufferRegistry registry = registry(1000);
        granted(registry.allocate(A, ACTIVATION, 300, GPU, false));
        granted(registry.allocate(B, ACTIVATION, 300, GPU, false));
        granted(registry.allocate(C, INTERMEDIATE, 300, GPU, false));
        registry.touch(A, GPU);   // order now B, C, A

        Granted grant = granted(registry.allocate(D, ACTIVATION, 500, GPU, false));

        assertThat(grant.evictions()).containsExactly(
                new Evict(B, GPU, COPY_TO_HOST_THEN_FREE, 300),
                new Evict(C, GPU, COPY_TO_HOST_THEN_FREE, 300));
        assertThat(registry.usedBytes(GPU)).isEqualTo(800);
        assertThat(registry.usedBytes(HOST)).isEqualTo(600);
        assertThat(registry.record(B).residency()).containsExactly(HOST);
        assertThat(registry.record(A).residency()).containsExactly(GPU);
        assertThat(registry.snapshot().evictions()).isEqualTo(2);
    }

    @Test
    void shouldFreeTheDeviceCopyAGpuWorkerKeptAndLeaveTheHostCopyButNeverOneARunningSegmentReads() {
        // a GPU worker's outputs: registered with the host copy it copied back and the device copy it keeps
        BufferRegistry registry = registry(1000);
        assertThat(registry.register(A, 400, INTERMEDIATE, Set.of(HOST, GPU))).isEmpty();
        registry.pin(A);   // read by a segment in flight
        assertThat(registry.register(B, 400, INTERMEDIATE, Set.of(HOST, GPU))).isEmpty();

        List<MemoryAction> actions = registry.register(C, 400, INTERMEDIATE, Set.of(HOST, GPU));

        assertThat(actions).as("A is older but pinned").containsExactly(new Evict(B, GPU, FREE, 400));
        assertThat(registry.record(B).residency()).containsExactly(HOST);
        assertThat(registry.record(A).residency()).containsExactlyInAnyOrder(HOST, GPU);
        assertThat(registry.usedBytes(GPU)).isEqualTo(800);
        assertThat(registry.usedBytes(HOST)).isEqualTo(1200);
        assertThat(registry.unpin(A)).as("within budget: nothing more to evict").isEmpty();
        assertThat(registry.setBudget(GPU, 500)).containsExactly(new Evict(A, GPU, FREE, 400));
        assertThat(registry.usedBytes(GPU)).isEqualTo(400);
        assertThat(registry.usedBytes(HOST)).as("no spill: the host copies were there").isEqualTo(1200);
    }

    @Test
    void shouldCountEveryBufferOnceByResidencyInTheSnapshotTotals() {
        BufferRegistry registry = registry(1000);
        registry.register(A, 100, WEIGHT, Set.of(HOST));
        granted(registry.allocate(A, WEIGHT, 100, GPU, false));       // A: host and device
        granted(registry.allocate(B, ACTIVATION, 200, GPU, false));  // B: device only
        registry.register(C, 400, WEIGHT, Set.of());                 // C: not mapped anywhere
        registry.register(D, 800, ACTIVATION, Set.of(HOST));         // D: host only
        registry.pin(B);

        MemoryState.BufferTotals totals = registry.snapshot().totals();

        assertThat(totals).isEqualTo(new MemoryState.BufferTotals(1500, 1, 1, 800, 1, 200, 1, 100, 1, 400));
    }

    @Test
    void shouldFreeDeviceCopiesThatHaveAnotherCopyOrAFileBehindThem() {
        BufferRegistry registry = registry(1000);
        registry.register(A, 400, WEIGHT, Set.of(HOST));              // mapped weight, uploaded below
        granted(registry.allocate(A, WEIGHT, 400, GPU, false));
        registry.register(B, 400, WEIGHT, Set.of());                 // weight not mapped on host at all
        granted(registry.allocate(B, WEIGHT, 400, GPU, false));

        Granted grant = granted(registry.allocate(C, ACTIVATION, 800, GPU, false));

        assertThat(grant.evictions()).containsExactly(new Evict(A, GPU, FREE, 400), new Evict(B, GPU, FREE, 400));
        assertThat(registry.record(A).residency()).containsExactly(HOST);
        assertThat(registry.record(B).residency()).isEmpty();
        assertThat(registry.usedBytes(HOST)).isEqualTo(400);
    }

    @Test
    void shouldDropWeightMappingsButNeverTheOnlyHostCopyOfAnActivation() {
        BufferRegistry registry = new BufferRegistry(Map.of(HOST, 1000L, GPU, 1000L));
        registry.register(A, 600, ACTIVATION, Set.of(HOST));
        registry.register(B, 300, WEIGHT, Set.of(HOST));

        List<MemoryAction> actions = registry.register(C, 300, ACTIVATION, Set.of(HOST));

        assertThat(actions).containsExactly(new Evict(B, HOST, DROP_MAPPING, 300));
        assertThat(registry.usedBytes(HOST)).isEqualTo(900);

        List<MemoryAction> over = registry.register(D, 500, ACTIVATION, Set.of(HOST));
        assertThat(over).as("host-only activations are the only copies: nothing may go").isEmpty();
        assertThat(registry.usedBytes(HOST)).isEqualTo(1400);
        assertThat(registry.evictableBytesAt(HOST)).isZero();
    }

    @Test
    void shouldSpillToHostAndThenDropHostMappingsInOneRequest() {
        BufferRegistry registry = new BufferRegistry(Map.of(HOST, 1000L, GPU, 500L));
        registry.register(A, 400, WEIGHT, Set.of(HOST));
        registry.register(B, 500, ACTIVATION, Set.of(HOST));
        granted(registry.allocate(C, ACTIVATION, 400, GPU, false));

        Granted grant = granted(registry.allocate(D, ACTIVATION, 400, GPU, false));

        assertThat(grant.evictions()).containsExactly(
                new Evict(C, GPU, COPY_TO_HOST_THEN_FREE, 400),
                new Evict(A, HOST, DROP_MAPPING, 400));
        assertThat(registry.usedBytes(HOST)).isEqualTo(900);
        assertThat(registry.usedBytes(GPU)).isEqualTo(400);
    }

    @Test
    void shouldNeverEvictAPinnedBuffer() {
        BufferRegistry registry = registry(1000);
        granted(registry.allocate(A, ACTIVATION, 400, GPU, true));
        granted(registry.allocate(B, ACTIVATION, 400, GPU, false));
        registry.pin(B);
        registry.unpin(B);
        granted(registry.allocate(C, ACTIVATION, 100, GPU, false));

        Granted grant = granted(registry.allocate(D, ACTIVATION, 500, GPU, false));

        assertThat(grant.evictions()).containsExactly(new Evict(B, GPU, COPY_TO_HOST_THEN_FREE, 400));
        assertThat(registry.record(A).residency()).containsExactly(GPU);
        assertThatThrownBy(() -> registry.free(A)).isInstanceOf(MemoryRequestException.class)
                .hasMessageContaining("buffer#1 is pinned (1 in-flight uses)");
    }

    @Test
    void shouldRejectWithoutChangeWhenPinnedBytesLeaveNoRoom() {
        BufferRegistry registry = registry(1000);
        granted(registry.allocate(A, ACTIVATION, 600, GPU, true));
        granted(registry.allocate(B, ACTIVATION, 300, GPU, false));
        List<BufferRecord> before = registry.leastRecentFirst();

        AllocateReply reply = registry.allocate(C, ACTIVATION, 500, GPU, false);

        assertThat(reply).isInstanceOf(Rejected.class);
        Rejected rejected = (Rejected) reply;
        assertThat(rejected.location()).isEqualTo(GPU);
        assertThat(rejected.requestedBytes()).isEqualTo(500);
        assertThat(rejected.budgetBytes()).isEqualTo(1000);
        assertThat(rejected.usedBytes()).isEqualTo(900);
        assertThat(rejected.pinnedBytes()).isEqualTo(600);
        assertThat(rejected.reason()).contains("device:0", "500 bytes requested", "budget 1,000", "used 900, of which 600 cannot be evicted (600 pinned)");
        assertThat(registry.leastRecentFirst()).isEqualTo(before);
        assertThat(registry.usedBytes(GPU)).isEqualTo(900);
        assertThat(registry.record(C)).isNull();
        assertThat(registry.snapshot().refusedRequests()).isEqualTo(1);
    }

    @Test
    void shouldRejectAllocationsLargerThanTheBudgetAndOnUnknownDevices() {
        BufferRegistry registry = registry(1000);
        assertThat(registry.allocate(A, ACTIVATION, 1001, GPU, false)).isInstanceOf(Rejected.class);
        AllocateReply unknown = registry.allocate(A, ACTIVATION, 10, Location.device(7), false);
        assertThat(unknown).isInstanceOf(Rejected.class);
        assertThat(((Rejected) unknown).reason()).contains("device:7 has no budget");
        assertThat(registry.usedBytes(GPU)).isZero();
    }

    @Test
    void shouldEvictOnceTheLastPinGoesWhenABudgetWasLoweredMeanwhile() {
        BufferRegistry registry = registry(1000);
        granted(registry.allocate(A, ACTIVATION, 600, GPU, true));
        registry.pin(A);
        assertThat(registry.setBudget(GPU, 500)).isEmpty();
        assertThat(registry.usedBytes(GPU)).isEqualTo(600);

        assertThat(registry.unpin(A)).isEmpty();
        assertThat(registry.unpin(A)).containsExactly(new Evict(A, GPU, COPY_TO_HOST_THEN_FREE, 600));
        assertThat(registry.usedBytes(GPU)).isZero();
        assertThatThrownBy(() -> registry.unpin(A)).isInstanceOf(MemoryRequestException.class)
                .hasMessageContaining("unpin without a pin");
    }

    @Test
    void shouldKeepAnUploadsSourceCopyUntilTheLastUnpinAndThenRebalanceItsLocation() {
        BufferRegistry registry = new BufferRegistry(Map.of(HOST, 1000L, GPU, 1000L));
        registry.register(A, 600, WEIGHT, Set.of(HOST));
        registry.register(B, 300, WEIGHT, Set.of(HOST));
        assertThat(granted(registry.allocate(A, WEIGHT, 600, GPU, true)).evictions()).isEmpty();

        assertThat(registry.setBudget(HOST, 500)).containsExactly(new Evict(B, HOST, DROP_MAPPING, 300));
        assertThat(registry.usedBytes(HOST)).as("the pinned upload source stays").isEqualTo(600);

        assertThat(registry.unpin(A)).containsExactly(new Evict(A, HOST, DROP_MAPPING, 600));
        assertThat(registry.record(A).residency()).containsExactly(GPU);
        assertThat(registry.usedBytes(HOST)).isZero();
    }

    @Test
    void shouldPrefetchIntoFreeRoomOnlyAndCountHitsAndMisses() {
        BufferRegistry registry = registry(1000);
        registry.register(A, 600, WEIGHT, Set.of(HOST));
        registry.register(B, 600, WEIGHT, Set.of(HOST));

        assertThat(registry.touch(A, GPU)).isFalse();
        List<MemoryAction> actions = registry.prefetch(List.of(A, B, new BufferId(99)), GPU);

        assertThat(actions).containsExactly(new Prefetch(A, GPU, 600));
        assertThat(registry.record(A).residency()).containsExactlyInAnyOrder(HOST, GPU);
        assertThat(registry.record(B).residency()).containsExactly(HOST);
        assertThat(registry.touch(A, GPU)).isTrue();
        MemoryState state = registry.snapshot();
        assertThat(state.prefetches()).isEqualTo(1);
        assertThat(state.droppedHints()).isEqualTo(2);
        assertThat(state.hits()).isEqualTo(1);
        assertThat(state.misses()).isEqualTo(1);
        assertThat(registry.leastRecentFirst()).extracting(BufferRecord::id).containsExactly(B, A);
    }

    @Test
    void shouldInvalidateStaleCopiesOnWriteAndStopTreatingAWrittenWeightAsFileBacked() {
        BufferRegistry registry = registry(1000);
        registry.register(A, 400, WEIGHT, Set.of(HOST));
        granted(registry.allocate(A, WEIGHT, 400, GPU, false));

        assertThat(registry.written(A, GPU)).containsExactly(new Invalidate(A, HOST, 400));
        BufferRecord written = registry.record(A);
        assertThat(written.version()).isEqualTo(1);
        assertThat(written.fileBacked()).isFalse();
        assertThat(written.residency()).containsExactly(GPU);
        assertThat(registry.usedBytes(HOST)).isZero();

        Granted grant = granted(registry.allocate(B, ACTIVATION, 700, GPU, false));
        assertThat(grant.evictions()).as("the written weight's only copy must be saved, not freed")
                .containsExactly(new Evict(A, GPU, COPY_TO_HOST_THEN_FREE, 400));
    }

    @Test
    void shouldSnapshotUsagePinsAndCountsPerLocation() {
        BufferRegistry registry = registry(1000);
        registry.register(A, 100, WEIGHT, Set.of(HOST));
        granted(registry.allocate(A, WEIGHT, 100, GPU, true));
        granted(registry.allocate(B, ACTIVATION, 250, GPU, false));

        MemoryState state = registry.snapshot();

        assertThat(state.bufferCount()).isEqualTo(2);
        assertThat(state.location(GPU)).isEqualTo(new MemoryState.LocationState(GPU, 1000, 350, 100, 2));
        assertThat(state.location(HOST)).isEqualTo(new MemoryState.LocationState(HOST, Long.MAX_VALUE, 100, 100, 1));
        registry.unpin(A);
        registry.free(A);
        assertThat(registry.snapshot().location(GPU)).isEqualTo(new MemoryState.LocationState(GPU, 1000, 250, 0, 1));
        assertThat(registry.usedBytes(HOST)).isZero();
    }

    @Test
    void shouldRefuseBadRequestsWithMessagesNamingWhatWasWrong() {
        BufferRegistry registry = registry(1000);
        registry.register(A, 100, ACTIVATION, Set.of(HOST));
        assertThatThrownBy(() -> registry.register(A, 100, ACTIVATION, Set.of(HOST)))
                .hasMessageContaining("buffer#1 is already registered");
        assertThatThrownBy(() -> registry.register(B, 0, ACTIVATION, Set.of(HOST)))
                .hasMessageContaining("size 0 bytes (expected: 1 to 72,057,594,037,927,936)");
        assertThatThrownBy(() -> registry.register(B, Long.MAX_VALUE, WEIGHT, Set.of(HOST)))
                .hasMessageContaining("(expected: 1 to ");
        assertThat(registry.allocate(B, WEIGHT, Long.MAX_VALUE, HOST, false)).isInstanceOf(Rejected.class);
        assertThatThrownBy(() -> registry.register(B, 10, ACTIVATION, Set.of()))
                .hasMessageContaining("needs at least one location");
        assertThatThrownBy(() -> registry.register(B, 10, ACTIVATION, Set.of(Location.device(3))))
                .hasMessageContaining("device:3 has no budget");
        assertThatThrownBy(() -> registry.pin(C)).hasMessageContaining("buffer#3 is not registered");
        assertThatThrownBy(() -> registry.written(A, GPU)).hasMessageContaining("its current copies are at [host]");
        assertThatThrownBy(() -> registry.setBudget(GPU, -1)).hasMessageContaining("(expected: 0+)");
        AllocateReply mismatch = registry.allocate(A, ACTIVATION, 200, GPU, false);
        assertThat(((Rejected) mismatch).reason()).contains("registered as ACTIVATION of 100 bytes");
        assertThat(registry.record(B)).isNull();
        assertThat(registry.usedBytes(HOST)).isEqualTo(100);
    }
}
