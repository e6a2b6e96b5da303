package aether.scheduler.actor;

import aether.device.spi.HostSegmentRunner;
import aether.runtime.protocol.SegmentSpec;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The real segment executor behind a gate the test controls: the first {@code freeRuns} runs pass, later ones wait
 * (at most 30 s) until {@link #open()}. Counts runs, and signals each run that reaches the gate.
 */
final class GatedRunner implements HostSegmentRunner {
    private final HostSegmentRunner inner;
    private final int freeRuns;
    private final AtomicInteger runs = new AtomicInteger();
    private final AtomicInteger finished = new AtomicInteger();
    private final CountDownLatch gate = new CountDownLatch(1);
    private final Semaphore atGate = new Semaphore(0);

    GatedRunner(HostSegmentRunner inner, int freeRuns) {
        this.inner = inner;
        this.freeRuns = freeRuns;
    }

    @Override
    public void run(SegmentSpec segment, List<MemorySegment> inputs, List<MemorySegment> outputs) {
        try {
            if (runs.incrementAndGet() > freeRuns) {
                atGate.release();
                try {
                    if (!gate.await(30, TimeUnit.SECONDS)) {
                        throw new IllegalStateException("test gate never opened");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted at the test gate", e);
                }
            }
            inner.run(segment, inputs, outputs);
        } finally {
            finished.incrementAndGet();
        }
    }

    void open() {
        gate.countDown();
    }

    /** Waits until {@code n} runs wait at the gate. */
    void awaitAtGate(int n) throws InterruptedException {
        if (!atGate.tryAcquire(n, 20, TimeUnit.SECONDS)) {
            throw new AssertionError("expected " + n + " runs at the gate");
        }
    }

    int runs() {
        return runs.get();
    }

    int finished() {
        return finished.get();
    }
}
