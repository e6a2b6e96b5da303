package aether.device.cpu;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of platform daemon threads taking tasks from one queue. An idle thread spins ({@link
 * Thread#onSpinWait()}) for {@code spinNs} before it parks, so a segment dispatched right after the previous one
 * finished starts without a wake-up (a park/unpark round trip costs tens of microseconds on a busy machine; the
 * scheduler's budget per segment is 20). Parked threads are woken one per task.
 */
final class SpinningExecutor implements AutoCloseable {

    /** A unit of work that can also be told it will never run. */
    interface Task extends Runnable {
        /** Called instead of {@link #run} for a task still queued when the executor closes. */
        void reject(RuntimeException reason);
    }

    private final ConcurrentLinkedQueue<Task> tasks = new ConcurrentLinkedQueue<>();
    private final Thread[] threads;
    private final AtomicIntegerArray parked;   // 1 while thread i is (about to be) parked
    private final long spinNs;
    private volatile boolean closed;

    SpinningExecutor(String name, int count, long spinNs) {
        this.spinNs = spinNs;
        this.threads = new Thread[count];
        this.parked = new AtomicIntegerArray(count);
        for (int i = 0; i < count; i++) {
            int index = i;
            threads[i] = Thread.ofPlatform().daemon().name(name + "-" + i).unstarted(() -> loop(index));
            threads[i].start();
        }
    }

    /**
     * Queues {@code task}.
     *
     * @throws RejectedExecutionException after {@link #close}
     */
    void execute(Task task) {
        if (closed) {
            throw new RejectedExecutionException("executor closed");
        }
        tasks.offer(task);
        // Dekker pairing with loop(): a thread sets parked then re-reads the queue; we write the queue then read
        // parked (both volatile), so at least one side sees the other and no task waits for a parked thread.
        for (int i = 0; i < threads.length; i++) {
            if (parked.get(i) == 1) {
                LockSupport.unpark(threads[i]);
                return;
            }
        }
    }

    private void loop(int index) {
        while (!closed) {
            Task task = tasks.poll();
            if (task != null) {
                task.run();
                continue;
            }
            long start = System.nanoTime();
            while (task == null && !closed && System.nanoTime() - start < spinNs) {
                Thread.onSpinWait();
                task = tasks.poll();
            }
            if (task != null) {
                task.run();
                continue;
            }
            parked.set(index, 1);
            if (tasks.isEmpty() && !closed) {
                LockSupport.parkNanos(this, TimeUnit.MILLISECONDS.toNanos(1));
            }
            parked.set(index, 0);
        }
    }

    /** Stops the threads once their current task ends; queued tasks are rejected, never silently dropped. */
    @Override
    public void close() {
        closed = true;
        for (Task t = tasks.poll(); t != null; t = tasks.poll()) {
            t.reject(new RejectedExecutionException("executor closed"));
        }
        for (Thread t : threads) {
            LockSupport.unpark(t);
        }
    }
}
