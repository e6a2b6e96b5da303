package aether.runtime.dispatch;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of threads taking tasks from one queue; an idle thread spins ({@link Thread#onSpinWait()}) for
 * {@code spin} before it parks. Run under a Pekko dispatcher with one thread, the actors of a node's compute path
 * (scheduler, workers, memory manager) hand messages to each other on that thread without any wake-up, and a
 * completion from a device thread arriving within the spin finds it awake: the dispatch path of a segment then costs
 * no park/unpark round trip (tens of microseconds each on a loaded machine) except when the node was idle.
 */
public final class SpinningExecutorService extends AbstractExecutorService {

    private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
    private final Thread[] threads;
    private final AtomicIntegerArray parked;   // 1 while thread i is (about to be) parked
    private final long spinNs;
    private volatile boolean shutdown;

    /**
     * @throws IllegalArgumentException unless {@code threads >= 1} and {@code spin} is not negative
     */
    public SpinningExecutorService(int threadCount, Duration spin, ThreadFactory factory) {
        if (threadCount < 1) {
            throw new IllegalArgumentException("threads: " + threadCount + " (expected: 1+)");
        }
        if (spin.isNegative()) {
            throw new IllegalArgumentException("spin: " + spin + " (expected: 0 or more)");
        }
        this.spinNs = spin.toNanos();
        this.threads = new Thread[threadCount];
        this.parked = new AtomicIntegerArray(threadCount);
        for (int i = 0; i < threadCount; i++) {
            int index = i;
            threads[i] = factory.newThread(() -> loop(index));
        }
        for (Thread t : threads) {
            t.start();
        }
    }

    @Override
    public void execute(Runnable task) {
        if (shutdown) {
            throw new RejectedExecutionException("executor shut down");
        }
        tasks.offer(task);
        // Dekker pairing with loop(): a thread sets parked then re-reads the queue; we write the queue then read
        // parked, so at least one side sees the other and no task waits for a parked thread.
        for (int i = 0; i < threads.length; i++) {
            if (parked.get(i) == 1) {
                LockSupport.unpark(threads[i]);
                return;
            }
        }
    }

    private void loop(int index) {
        while (true) {
            Runnable task = tasks.poll();
            if (task == null) {
                long start = System.nanoTime();
                while (task == null && !shutdown && System.nanoTime() - start < spinNs) {
                    Thread.onSpinWait();
                    task = tasks.poll();
                }
            }
            if (task != null) {
                run(task);
                continue;
            }
            if (shutdown) {
                return;     // queue drained
            }
            parked.set(index, 1);
            if (tasks.isEmpty() && !shutdown) {
                LockSupport.parkNanos(this, TimeUnit.MILLISECONDS.toNanos(10));
            }
            parked.set(index, 0);
        }
    }

    private static void run(Runnable task) {
        try {
            task.run();
        } catch (RuntimeException | Error e) {
            // the executor's thread stays alive for the other actors; the failure goes where an uncaught one would
            Thread t = Thread.currentThread();
            t.getUncaughtExceptionHandler().uncaughtException(t, e);
        }
    }

    /** Runs what is queued, then stops the threads. */
    @Override
    public void shutdown() {
        shutdown = true;
        for (Thread t : threads) {
            LockSupport.unpark(t);
        }
    }

    @Override
    public List<Runnable> shutdownNow() {
        shutdown = true;
        List<Runnable> left = new ArrayList<>();
        for (Runnable r = tasks.poll(); r != null; r = tasks.poll()) {
            left.add(r);
        }
        for (Thread t : threads) {
            LockSupport.unpark(t);
        }
        return left;
    }

    @Override
    public boolean isShutdown() {
        return shutdown;
    }

    @Override
    public boolean isTerminated() {
        if (!shutdown) {
            return false;
        }
        for (Thread t : threads) {
            if (t.isAlive()) {
                return false;
            }
        }
        return true;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        for (Thread t : threads) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return isTerminated();
            }
            t.join(Duration.ofNanos(left));
        }
        return isTerminated();
    }
}
