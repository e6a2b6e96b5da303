package aether.device.spi;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.spi.ResidentBuffersTest.FakeBuffer;
import aether.runtime.protocol.BufferId;
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

/**
 * Random sequences of adopt / acquire / release / evict / take-room on a few buffer ids, checked after every step: a
 * copy a reader holds is never freed or taken, no copy is freed twice, the bytes held are those of the copies adopted
 * and not yet freed, and once every reader is done and the set is cleared every adopted copy was freed exactly once
 * (and no copy the set refused).
 */
class ResidentBuffersProperties {

    enum Kind { ADOPT, ACQUIRE, RELEASE, EVICT, TAKE }

    record Step(Kind kind, int id, long bytes) {}

    @Provide
    Arbitrary<List<Step>> steps() {
        Arbitrary<Step> step = Combinators.combine(Arbitraries.of(Kind.class), Arbitraries.integers().between(0, 4),
                Arbitraries.longs().between(1, 300)).as(Step::new);
        return step.list().ofMinSize(1).ofMaxSize(60);
    }

    @Property(tries = 400)
    void aCopyInUseIsNeverFreedAndEveryKeptCopyIsFreedExactlyOnce(@ForAll("steps") List<Step> steps) {
        List<DeviceBuffer> freed = new ArrayList<>();
        ResidentBuffers resident = new ResidentBuffers("property gpu", freed::add);
        Map<Integer, List<DeviceBuffer>> readers = new HashMap<>();
        Set<DeviceBuffer> adopted = new HashSet<>();
        Set<DeviceBuffer> gone = new HashSet<>();
        int made = 0;
        for (Step s : steps) {
            BufferId id = new BufferId(s.id());
            switch (s.kind()) {
                case ADOPT -> {
                    FakeBuffer b = new FakeBuffer("b" + made++, s.bytes());
                    if (resident.adopt(id, 0, b)) {
                        adopted.add(b);
                    }
                }
                case ACQUIRE -> {
                    DeviceBuffer b = resident.acquire(id, 0);
                    if (b != null) {
                        assertThat(gone).as("a reader got a freed copy").doesNotContain(b);
                        readers.computeIfAbsent(s.id(), k -> new ArrayList<>()).add(b);
                    }
                }
                case RELEASE -> {
                    List<DeviceBuffer> held = readers.getOrDefault(s.id(), List.of());
                    if (!held.isEmpty()) {
                        held.removeLast();
                        resident.release(id);
                    }
                }
                case EVICT -> resident.evict(id);
                case TAKE -> {
                    for (DeviceBuffer b : resident.takeUnused(s.bytes())) {
                        assertThat(gone.add(b)).as("%s taken twice", b).isTrue();
                    }
                }
            }
            for (DeviceBuffer b : freed) {
                assertThat(gone.add(b)).as("%s freed twice", b).isTrue();
            }
            freed.clear();
            for (List<DeviceBuffer> held : readers.values()) {
                for (DeviceBuffer b : held) {
                    assertThat(gone).as("freed while a reader holds it").doesNotContain(b);
                }
            }
            long expected = adopted.stream().filter(b -> !gone.contains(b)).mapToLong(DeviceBuffer::byteSize).sum();
            assertThat(resident.bytes()).as("bytes held after %s", s).isEqualTo(expected);
        }
        readers.forEach((id, held) -> held.forEach(b -> resident.release(new BufferId(id))));
        resident.clear();
        for (DeviceBuffer b : freed) {
            assertThat(gone.add(b)).as("%s freed twice", b).isTrue();
        }
        assertThat(gone).isEqualTo(adopted);
        assertThat(resident.size()).isZero();
        assertThat(resident.bytes()).isZero();
    }
}
