package aether.device.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class KernelPoolTest {

    /** Records which thread index covered each element, and the caller-thread identity of chunk 0. */
    private static final class Recorder implements RangeTask {
        final AtomicIntegerArray owner;
        final AtomicReference<Thread> chunk0 = new AtomicReference<>();
        final int align;

        Recorder(int n, int align) {
            owner = new AtomicIntegerArray(n);
            for (int i = 0; i < n; i++) {
                owner.set(i, -1);
            }
            this.align = align;
        }

        @Override
        public void run(int from, int to, int thread) {
            assertThat(from % align).as("chunk start %d aligned to %d", from, align).isZero();
            if (thread == 0) {
                chunk0.set(Thread.currentThread());
            }
            for (int i = from; i < to; i++) {
                if (!owner.compareAndSet(i, -1, thread)) {
                    throw new AssertionError("index " + i + " covered twice");
                }
            }
        }
    }

    @Test
    @Timeout(60)
    void shouldCoverEveryIndexOnceInAlignedChunksWithTheCallerRunningChunkZero() {
        for (int threads : new int[] {1, 2, 3, 8}) {
            try (KernelPool pool = new KernelPool(threads, 10_000)) {
                for (int n : new int[] {1, 15, 16, 17, 100, 257, 4096, 32000}) {
                    for (int align : new int[] {1, 16, 64}) {
                        Recorder rec = new Recorder(n, align);
                        pool.parallelFor(n, align, rec);
                        int distinct = 0;
                        int last = -1;
                        for (int i = 0; i < n; i++) {
                            int o = rec.owner.get(i);
                            assertThat(o).as("threads=%d n=%d align=%d index %d", threads, n, align, i).isBetween(0, threads - 1);
                            assertThat(o).as("chunks are contiguous and in thread order").isGreaterThanOrEqualTo(last);
                            if (o != last) {
                                distinct++;
                                last = o;
                            }
                        }
                        assertThat(distinct).isLessThanOrEqualTo(threads);
                        if (n >= threads * align) {
                            assertThat(distinct).as("threads=%d n=%d align=%d uses every thread", threads, n, align).isEqualTo(threads);
                        }
                        assertThat(rec.chunk0.get()).isSameAs(Thread.currentThread());
                    }
                }
            }
        }
    }

    @Test
    @Timeout(60)
    void shouldSurviveManyBackToBackDispatchesWithSpinningAndWithParking() {
        for (long spinNs : new long[] {0, 1_000, KernelPool.DEFAULT_SPIN_NS}) {
            try (KernelPool pool = new KernelPool(3, spinNs)) {
                long[] sums = new long[3];
                RangeTask task = (from, to, thread) -> {
                    for (int i = from; i < to; i++) {
                        sums[thread] += i;
                    }
                };
                int rounds = spinNs == 0 ? 2_000 : 10_000;
                for (int r = 0; r < rounds; r++) {
                    pool.parallelFor(1000, 16, task);
                }
                assertThat(sums[0] + sums[1] + sums[2]).as("spinNs=%d", spinNs).isEqualTo(rounds * (999L * 1000 / 2));
            }
        }
    }

    @Test
    @Timeout(30)
    void shouldRethrowATaskFailureOnTheCallerAndStayUsable() {
        try (KernelPool pool = new KernelPool(2, 1_000)) {
            RangeTask failing = (from, to, thread) -> {
                if (thread == 1) {
                    throw new IllegalStateException("boom in chunk " + from);
                }
            };
            assertThatThrownBy(() -> pool.parallelFor(100, 1, failing))
                    .isInstanceOf(IllegalStateException.class).hasMessageStartingWith("boom in chunk");
            Recorder rec = new Recorder(100, 1);
            pool.parallelFor(100, 1, rec);
            for (int i = 0; i < 100; i++) {
                assertThat(rec.owner.get(i)).isNotNegative();
            }
        }
    }

    @Test
    @Timeout(30)
    void shouldRejectConcurrentDispatchAndDispatchAfterClose() throws Exception {
        KernelPool pool = new KernelPool(2, 1_000);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Thread other = Thread.ofPlatform().start(() -> pool.parallelFor(1, 1, (from, to, thread) -> {
            inside.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));
        inside.await();
        assertThatThrownBy(() -> pool.parallelFor(10, 1, (from, to, thread) -> { }))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("concurrent dispatch");
        release.countDown();
        other.join();
        pool.close();
        pool.close();
        assertThatThrownBy(() -> pool.parallelFor(10, 1, (from, to, thread) -> { }))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
        assertThatThrownBy(() -> new KernelPool(0, 0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("threads: 0");
    }
}
