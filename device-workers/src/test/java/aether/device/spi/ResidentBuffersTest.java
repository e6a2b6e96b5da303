package aether.device.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.Location;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The device copies a GPU keeps between segments: hits and misses, LRU trimming, no free while a segment reads one. */
class ResidentBuffersTest {

    /** A device buffer that only has a size: enough to see which ones were freed. */
    record FakeBuffer(String name, long byteSize) implements DeviceBuffer {
        @Override
        public Location location() {
            return Location.device(0);
        }

        @Override
        public MemorySegment host() {
            return null;
        }
    }

    final List<DeviceBuffer> freed = new ArrayList<>();
    final ResidentBuffers resident = new ResidentBuffers("fake gpu", freed::add);

    static BufferId id(long n) {
        return new BufferId(n);
    }

    @Test
    void aKeptCopyIsFoundAtItsVersionAndCountedAsAnUploadSkipped() {
        FakeBuffer a = new FakeBuffer("a", 100);
        assertThat(resident.acquire(id(1), 0)).as("nothing kept yet").isNull();
        assertThat(resident.adopt(id(1), 0, a)).isTrue();
        assertThat(resident.acquire(id(1), 0)).isSameAs(a);
        assertThat(resident.acquire(id(1), 1)).as("another version is not this copy").isNull();
        resident.release(id(1));
        assertThat(resident.hits()).isEqualTo(1);
        assertThat(resident.misses()).isEqualTo(2);
        assertThat(resident.bytes()).isEqualTo(100);
        assertThat(freed).isEmpty();
    }

    @Test
    void aSecondCopyOfTheSameBufferIsRefusedAndStaysTheCallers() {
        FakeBuffer first = new FakeBuffer("first", 10);
        FakeBuffer second = new FakeBuffer("second", 10);
        assertThat(resident.adopt(id(7), 0, first)).isTrue();
        assertThat(resident.adopt(id(7), 0, second)).isFalse();
        assertThat(resident.size()).isEqualTo(1);
        assertThat(resident.bytes()).isEqualTo(10);
    }

    @Test
    void anEvictionOfACopyInUseWaitsForTheLastRelease() {
        FakeBuffer a = new FakeBuffer("a", 64);
        resident.adopt(id(1), 0, a);
        resident.acquire(id(1), 0);
        resident.acquire(id(1), 0);

        assertThat(resident.evict(id(1))).isTrue();
        assertThat(freed).as("two segments still read it").isEmpty();
        assertThat(resident.holds(id(1))).isFalse();
        assertThat(resident.acquire(id(1), 0)).as("a new reader uploads instead").isNull();
        resident.release(id(1));
        assertThat(freed).isEmpty();
        resident.release(id(1));
        assertThat(freed).containsExactly(a);
        assertThat(resident.size()).isZero();
        assertThat(resident.bytes()).isZero();
        assertThat(resident.evicted()).isEqualTo(1);
        assertThat(resident.evict(id(1))).as("already gone").isFalse();
    }

    @Test
    void takingRoomPicksTheLeastRecentlyUsedCopiesNobodyReads() {
        FakeBuffer a = new FakeBuffer("a", 100);
        FakeBuffer b = new FakeBuffer("b", 100);
        FakeBuffer c = new FakeBuffer("c", 100);
        FakeBuffer d = new FakeBuffer("d", 100);
        resident.adopt(id(1), 0, a);
        resident.adopt(id(2), 0, b);
        resident.adopt(id(3), 0, c);
        resident.adopt(id(4), 0, d);
        resident.acquire(id(1), 0);   // a: most recently used and in use
        resident.release(id(1));
        resident.acquire(id(2), 0);   // b: in use
        // order now c, d, a, b

        assertThat(resident.takeUnused(150)).containsExactly(c, d);
        assertThat(resident.takeUnused(1000)).as("b is in use").containsExactly(a);
        assertThat(resident.size()).isEqualTo(1);
        assertThat(resident.bytes()).isEqualTo(100);
        assertThat(resident.trimmed()).isEqualTo(3);
        assertThat(freed).as("the caller frees what it took").isEmpty();
        resident.release(id(2));
        assertThat(resident.clear()).isEqualTo(1);
        assertThat(freed).containsExactly(b);
    }

    @Test
    void aReleaseWithoutAnAcquireIsAnError() {
        resident.adopt(id(1), 0, new FakeBuffer("a", 1));
        assertThatThrownBy(() -> resident.release(id(1))).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("fake gpu").hasMessageContaining("without an acquire");
        assertThatThrownBy(() -> resident.release(id(2))).isInstanceOf(IllegalStateException.class);
    }
}
