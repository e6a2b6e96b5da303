package aether.device.cpu;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed pool of platform daemon threads dedicated to kernels: {@link #parallelFor} splits an index range into one
 * contiguous chunk per thread, the calling thread runs chunk 0, and the call returns when every chunk is done.
 *
 * <p>Why not ForkJoin or an executor: a decode step dispatches hundreds of small ops back to back, so a dispatch must
 * cost a few microseconds and allocate nothing. Workers spin ({@link Thread#onSpinWait()}) for {@code spinNs} after
 * each op, so the next op finds them awake, and only then park; the caller waits the same way for the last chunk.
 * The hand-off is a generation counter (one volatile write wakes every spinning worker) plus an atomic countdown.
 *
 * <p>Chunk boundaries are multiples of the {@code align} the caller passes (e.g. 16 f32 output rows = one 64-byte
 * cache line), so no two threads write the same cache line of an aligned output.
 *
 * <p>Thread safety: one dispatch at a time; a concurrent {@code parallelFor} from a second thread fails with
 * {@link IllegalStateException} rather than interleaving. A task's exception is rethrown on the caller after all
 * chunks finished (the first one wins; later ones are attached as suppressed). {@link #close()} stops the threads.
 */
public final class KernelPool implements AutoCloseable {
    /** Spin this long before parking: longer than the gap between two ops of a decode step, short enough to idle. */
    public static final long DEFAULT_SPIN_NS = 100_000;

    private final Worker[] workers;
    private final int threads;
    private final long spinNs;
    private final AtomicBoolean busy = new AtomicBoolean();
    private final AtomicInteger remaining = new AtomicInteger();

    // Dispatch state: written by the caller before the volatile generation bump, read by workers after seeing it.
    private RangeTask task;
    private int n;
    private int align;
    private Thread caller;
    private volatile long generation;
    private volatile boolean callerParked;
    private volatile boolean closed;
    private volatile Throwable failure;

    /** A pool with one thread per available processor (the caller counts as one) and the default spin time. */
    public KernelPool() {
        this(Runtime.getRuntime().availableProcessors(), DEFAULT_SPIN_NS);
    }

    /**
     * @param threads threads taking part in each dispatch, the caller included ({@code threads - 1} are started)
     * @param spinNs  how long an idle thread spins before it parks; 0 parks at once
     */
    public KernelPool(int threads, long spinNs) {
        if (threads < 1 || threads > 4096) {
            throw new IllegalArgumentException("threads: %d (expected: 1..4096)".formatted(threads));
        }
        if (spinNs < 0) {
            throw new IllegalArgumentException("spinNs: %d (expected: 0+)".formatted(spinNs));
        }
        this.threads = threads;
        this.spinNs = spinNs;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].thread.start();
        }
    }

    /** Threads taking part in a dispatch, the caller included. */
    public int threads() {
        return threads;
    }

    /**
     * Runs {@code task} over {@code [0, n)} split in at most {@link #threads()} contiguous chunks whose boundaries are
     * multiples of {@code align}; returns when all chunks are done. A range of at most {@code align} elements runs on
     * the caller alone without waking anyone.
     *
     * @throws IllegalStateException if the pool is closed or another thread is dispatching
     */
    public void parallelFor(int n, int align, RangeTask task) {
        if (n < 0 || align < 1) {
            throw new IllegalArgumentException("parallelFor: n=%d, align=%d (expected: n 0+, align 1+)".formatted(n, align));
        }
        if (n == 0) {
            return;
        }
        if (!busy.compareAndSet(false, true)) {
            throw new IllegalStateException("KernelPool: concurrent dispatch (expected: one dispatch at a time)");
        }
        try {
            if (closed) {
                throw new IllegalStateException("KernelPool: closed");
            }
            if (workers.length == 0 || n <= align) {
                task.run(0, n, 0);
                return;
            }
            this.task = task;
            this.n = n;
            this.align = align;
            this.caller = Thread.currentThread();
            this.failure = null;
            remaining.set(workers.length);
            generation = generation + 1;             // the volatile write that publishes the fields above
            for (Worker w : workers) {
                if (w.parked) {
                    LockSupport.unpark(w.thread);
                }
            }
            try {
                runChunk(0);
            } catch (Throwable t) {
                recordFailure(t);
            }
            awaitWorkers();
            this.task = null;
            Throwable f = failure;
            if (f != null) {
                failure = null;
                if (f instanceof RuntimeException re) {
                    throw re;
                }
                if (f instanceof Error e) {
                    throw e;
                }
                throw new IllegalStateException("kernel task failed", f);
            }
        } finally {
            busy.set(false);
        }
    }

    private void runChunk(int index) {
        int units = (n + align - 1) / align;
        int base = units / threads;
        int extra = units % threads;
        int firstUnit = index * base + Math.min(index, extra);
        int count = base + (index < extra ? 1 : 0);
        int from = (int) Math.min(n, (long) firstUnit * align);
        int to = (int) Math.min(n, (long) (firstUnit + count) * align);
        if (from < to) {
            task.run(from, to, index);
        }
    }

    private synchronized void recordFailure(Throwable t) {
        if (failure == null) {
            failure = t;
        } else if (failure != t) {
            failure.addSuppressed(t);
        }
    }

    private void awaitWorkers() {
        long start = System.nanoTime();
        int spins = 0;
        while (remaining.get() != 0) {
            if (++spins < 64) {
                Thread.onSpinWait();
                continue;
            }
            spins = 0;
            if (System.nanoTime() - start < spinNs) {
                continue;
            }
            callerParked = true;
            if (remaining.get() != 0) {
                LockSupport.parkNanos(this, TimeUnit.MILLISECONDS.toNanos(1));
            }
            callerParked = false;
        }
    }

    /** Stops the worker threads (waits for a running dispatch's chunks to end); later dispatches fail. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        generation = generation + 1;
        for (Worker w : workers) {
            LockSupport.unpark(w.thread);
        }
        for (Worker w : workers) {
            try {
                w.thread.join(TimeUnit.SECONDS.toMillis(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private final class Worker implements Runnable {
        final int index;
        final Thread thread;
        volatile boolean parked;

        Worker(int index) {
            this.index = index;
            this.thread = Thread.ofPlatform().daemon().name("aether-kernel-" + index).unstarted(this);
        }

        @Override
        public void run() {
            long seen = 0;
            while (true) {
                seen = awaitGeneration(seen);
                if (closed) {
                    return;
                }
                try {
                    runChunk(index);
                } catch (Throwable t) {
                    recordFailure(t);
                }
                if (remaining.decrementAndGet() == 0 && callerParked) {
                    LockSupport.unpark(caller);
                }
            }
        }

        private long awaitGeneration(long seen) {
            long start = System.nanoTime();
            int spins = 0;
            while (true) {
                long g = generation;
                if (g != seen || closed) {
                    return g;
                }
                if (++spins < 64) {
                    Thread.onSpinWait();
                    continue;
                }
                spins = 0;
                if (System.nanoTime() - start < spinNs) {
                    continue;
                }
                // Dekker pairing with parallelFor: we write parked then read generation; the caller writes generation
                // then reads parked. Volatile order guarantees at least one side sees the other, so no lost wake-up.
                parked = true;
                if (generation == seen && !closed) {
                    LockSupport.park(this);
                }
                parked = false;
            }
        }
    }
}
