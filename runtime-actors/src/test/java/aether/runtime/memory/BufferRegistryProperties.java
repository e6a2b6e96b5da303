package aether.runtime.memory;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.memory.AllocateReply.Granted;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.EvictionAction;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.MemoryAction;
import aether.runtime.protocol.MemoryAction.Evict;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.LongRange;

/**
 * Random sequences of register / touch / pin / unpin / allocate / write / prefetch / free / budget changes, checked
 * after every step against invariants that do not depend on how the registry computes them: accounting matches the
 * records, no pinned buffer is evicted, no buffer loses its last copy, usage is within budget whenever evictable bytes
 * remain, evictions take least recently used copies first, and refused requests change nothing.
 *
 * <p>One documented exemption from "within budget": booking a new copy of a known buffer (allocation, prefetch) leaves
 * its other copies alone, since they are the source of the transfer, even though the new copy makes them evictable. So
 * at other locations the bytes of buffers that ever gained a copy this way are not counted as evictable.
 */
class BufferRegistryProperties {
    static final Location HOST = Location.HOST;
    static final List<Location> LOCATIONS = List.of(HOST, Location.device(0), Location.device(1));

    sealed interface Op {}

    record Register(BufferId id, long size, BufferOrigin origin, Set<Location> residency) implements Op {}

    record Touch(BufferId id, Location location) implements Op {}

    record Pin(BufferId id) implements Op {}

    record Unpin(BufferId id) implements Op {}

    record Allocate(BufferId id, BufferOrigin origin, long size, Location location, boolean pin) implements Op {}

    record Written(BufferId id, Location location) implements Op {}

    record Free(BufferId id) implements Op {}

    record Prefetch(List<BufferId> ids, Location location) implements Op {}

    record SetBudget(Location location, long limit) implements Op {}

    @Property(tries = 400)
    void bookkeepingInvariantsHoldAfterEveryStep(
            @ForAll("hostBudgets") long hostBudget,
            @ForAll @LongRange(min = 0, max = 2000) long gpu0Budget,
            @ForAll @LongRange(min = 0, max = 2000) long gpu1Budget,
            @ForAll("operations") List<Op> operations) {
        BufferRegistry registry = new BufferRegistry(
                Map.of(HOST, hostBudget, LOCATIONS.get(1), gpu0Budget, LOCATIONS.get(2), gpu1Budget));
        Map<BufferId, Set<Location>> copiedTo = new HashMap<>();
        for (Op op : operations) {
            Map<BufferId, BufferRecord> before = records(registry);
            Map<Location, Long> usedBefore = usage(registry);
            List<MemoryAction> actions;
            try {
                actions = apply(registry, op);
            } catch (MemoryRequestException refused) {
                assertThat(records(registry)).as("refused %s changed records", op).isEqualTo(before);
                assertThat(usage(registry)).as("refused %s changed usage", op).isEqualTo(usedBefore);
                continue;
            }
            for (BufferRecord buffer : registry.leastRecentFirst()) {
                BufferRecord old = before.get(buffer.id());
                if (old != null && (op instanceof Allocate || op instanceof Prefetch)) {
                    for (Location location : buffer.residency()) {
                        if (!old.residentAt(location)) {
                            copiedTo.computeIfAbsent(buffer.id(), id -> new HashSet<>()).add(location);
                        }
                    }
                }
            }
            if (op instanceof Free free) {
                copiedTo.remove(free.id());
            }
            check(registry, op, before, actions, copiedTo);
        }
    }

    private static List<MemoryAction> apply(BufferRegistry registry, Op op) {
        return switch (op) {
            case Register r -> registry.register(r.id(), r.size(), r.origin(), r.residency());
            case Touch t -> {
                registry.touch(t.id(), t.location());
                yield List.of();
            }
            case Pin p -> {
                registry.pin(p.id());
                yield List.of();
            }
            case Unpin u -> registry.unpin(u.id());
            case Allocate a -> registry.allocate(a.id(), a.origin(), a.size(), a.location(), a.pin())
                    instanceof Granted granted ? granted.evictions() : List.of();
            case Written w -> registry.written(w.id(), w.location());
            case Free f -> {
                registry.free(f.id());
                yield List.of();
            }
            case Prefetch p -> registry.prefetch(p.ids(), p.location());
            case SetBudget s -> registry.setBudget(s.location(), s.limit());
        };
    }

    private static void check(
            BufferRegistry registry,
            Op op,
            Map<BufferId, BufferRecord> before,
            List<MemoryAction> actions,
            Map<BufferId, Set<Location>> copiedTo) {
        Map<BufferId, BufferRecord> after = records(registry);
        String where = "after " + op + " with actions " + actions;
        for (Location location : LOCATIONS) {
            long resident = 0;
            for (BufferRecord buffer : after.values()) {
                if (buffer.residentAt(location)) {
                    resident += buffer.sizeBytes();
                }
            }
            assertThat(registry.usedBytes(location)).as("accounting at %s %s", location, where).isEqualTo(resident);
            if (registry.usedBytes(location) > registry.budgetBytes(location)) {
                long evictable = 0;
                for (BufferRecord buffer : after.values()) {
                    Set<Location> copies = copiedTo.getOrDefault(buffer.id(), Set.of());
                    // the copy here may be the source of a copy made to another location (a prefetch), which the
                    // registry must not drop in the same breath; this copy may itself have arrived by a copy (an
                    // eviction to the host, then a prefetch back from there)
                    boolean transferSource = copies.stream().anyMatch(copy -> !copy.equals(location));
                    if (!transferSource && EvictionPolicy.actionFor(buffer, location) != null) {
                        evictable += buffer.sizeBytes();
                    }
                }
                assertThat(evictable).as("%s over budget while evictable bytes remain %s", location, where).isZero();
            }
        }
        for (BufferRecord buffer : after.values()) {
            assertThat(buffer.fileBacked() || !buffer.residency().isEmpty())
                    .as("%s lost its last copy %s", buffer, where).isTrue();
            BufferRecord old = before.get(buffer.id());
            if (old != null && !(op instanceof Written)) {
                assertThat(buffer.version()).as("version of %s %s", buffer.id(), where).isEqualTo(old.version());
            }
        }
        Map<Location, Set<BufferId>> victims = new HashMap<>();
        for (MemoryAction action : actions) {
            if (!(action instanceof Evict evict)) {
                continue;
            }
            BufferRecord old = before.get(evict.bufferId());
            BufferRecord now = after.get(evict.bufferId());
            boolean lastPinJustWent = op instanceof Unpin unpin && unpin.id().equals(evict.bufferId())
                    && old != null && old.pinCount() == 1;
            assertThat(old == null || !old.pinned() || lastPinJustWent)
                    .as("evicted pinned %s %s", old, where).isTrue();
            assertThat(now.pinned()).as("evicted pinned %s %s", now, where).isFalse();
            assertThat(now.residentAt(evict.location())).as("evicted copy still booked %s", where).isFalse();
            switch (evict.action()) {
                case FREE -> assertThat(now.fileBacked() || !now.residency().isEmpty())
                        .as("FREE of the last copy %s", where).isTrue();
                case DROP_MAPPING -> assertThat(evict.location().equals(HOST) && now.fileBacked())
                        .as("DROP_MAPPING of a non-file-backed or device copy %s", where).isTrue();
                case COPY_TO_HOST_THEN_FREE -> assertThat(!evict.location().equals(HOST) && now.residentAt(HOST))
                        .as("COPY_TO_HOST_THEN_FREE not ending on host %s", where).isTrue();
            }
            victims.computeIfAbsent(evict.location(), l -> new HashSet<>()).add(evict.bufferId());
        }
        BufferId allocated = op instanceof Allocate a ? a.id() : null;
        victims.forEach((location, ids) -> {
            long newestVictim = 0;
            for (BufferId id : ids) {
                newestVictim = Math.max(newestVictim, after.get(id).lastUseTick());
            }
            for (BufferRecord buffer : after.values()) {
                if (!ids.contains(buffer.id()) && !buffer.id().equals(allocated)
                        && EvictionPolicy.actionFor(buffer, location) != null) {
                    assertThat(buffer.lastUseTick())
                            .as("%s kept at %s though older than a victim %s", buffer, location, where)
                            .isGreaterThan(newestVictim);
                }
            }
        });
    }

    private static Map<BufferId, BufferRecord> records(BufferRegistry registry) {
        Map<BufferId, BufferRecord> records = new HashMap<>();
        for (BufferRecord buffer : registry.leastRecentFirst()) {
            records.put(buffer.id(), buffer);
        }
        return records;
    }

    private static Map<Location, Long> usage(BufferRegistry registry) {
        Map<Location, Long> used = new HashMap<>();
        for (Location location : LOCATIONS) {
            used.put(location, registry.usedBytes(location));
        }
        return used;
    }

    @Provide
    Arbitrary<Long> hostBudgets() {
        return Arbitraries.oneOf(Arbitraries.just(Long.MAX_VALUE), Arbitraries.longs().between(0, 3000));
    }

    @Provide
    Arbitrary<List<Op>> operations() {
        Arbitrary<BufferId> ids = Arbitraries.longs().between(0, 9).map(BufferId::new);
        Arbitrary<Location> locations = Arbitraries.of(LOCATIONS);
        Arbitrary<Long> sizes = Arbitraries.longs().between(1, 700);
        Arbitrary<BufferOrigin> origins = Arbitraries.of(BufferOrigin.class);
        Arbitrary<Set<Location>> residencies = Arbitraries.of(LOCATIONS).set().ofMaxSize(2);
        Arbitrary<Op> op = Arbitraries.frequencyOf(
                net.jqwik.api.Tuple.of(4, Combinators.combine(ids, sizes, origins, residencies).as(Register::new)),
                net.jqwik.api.Tuple.of(3, Combinators.combine(ids, locations).as(Touch::new)),
                net.jqwik.api.Tuple.of(2, ids.map(Pin::new)),
                net.jqwik.api.Tuple.of(2, ids.map(Unpin::new)),
                net.jqwik.api.Tuple.of(5, Combinators.combine(ids, origins, sizes, locations, Arbitraries.of(true, false))
                        .as(Allocate::new)),
                net.jqwik.api.Tuple.of(1, Combinators.combine(ids, locations).as(Written::new)),
                net.jqwik.api.Tuple.of(1, ids.map(Free::new)),
                net.jqwik.api.Tuple.of(1, Combinators.combine(ids.list().ofMaxSize(4), locations).as(Prefetch::new)),
                net.jqwik.api.Tuple.of(1, Combinators.combine(locations, Arbitraries.longs().between(0, 2500))
                        .as(SetBudget::new)));
        return op.list().ofMinSize(1).ofMaxSize(60);
    }

    /** A victim must be a copy that was evictable: the property must be able to fail on a wrong policy. */
    @Property(tries = 200)
    void actionForNeverOffersToDropTheOnlyCopyOfData(
            @ForAll("residencies") Set<Location> residency,
            @ForAll BufferOrigin origin,
            @ForAll boolean fileBacked,
            @ForAll @LongRange(min = 0, max = 2) long pins) {
        BufferRecord buffer = new BufferRecord(new BufferId(1), 10, origin, 0, residency, (int) pins, 1,
                fileBacked && origin == BufferOrigin.WEIGHT);
        List<EvictionAction> offered = new ArrayList<>();
        for (Location location : LOCATIONS) {
            EvictionAction action = EvictionPolicy.actionFor(buffer, location);
            if (action == null) {
                continue;
            }
            offered.add(action);
            assertThat(pins).as("pinned buffers are not evictable").isZero();
            assertThat(residency).contains(location);
            boolean keepsACopy = buffer.fileBacked() || residency.size() > 1
                    || action == EvictionAction.COPY_TO_HOST_THEN_FREE;
            assertThat(keepsACopy).as("%s at %s with %s", buffer, location, action).isTrue();
        }
        if (pins == 0 && !residency.isEmpty() && (residency.size() > 1 || !residency.contains(HOST))) {
            assertThat(offered).as("an unpinned copy with a safe way out must be evictable").isNotEmpty();
        }
    }

    @Provide
    Arbitrary<Set<Location>> residencies() {
        return Arbitraries.of(LOCATIONS).set().ofMaxSize(3);
    }
}
