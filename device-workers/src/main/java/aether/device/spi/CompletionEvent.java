package aether.device.spi;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Marks the end of asynchronous device work (a CUDA event recorded after the work on its stream; a task on the CPU
 * pool). Completes normally when the work is done, exceptionally when it failed or was cancelled before it started.
 * Continuations run on the device's thread: hand results to an actor ({@code pipeToSelf}) rather than work there.
 */
public final class CompletionEvent {

    private final CompletableFuture<Void> done;
    private volatile long startNanos;
    private volatile long endNanos;

    public CompletionEvent() {
        this.done = new CompletableFuture<>();
    }

    /** An event that has already completed (work that finished synchronously). */
    public static CompletionEvent completed() {
        CompletionEvent e = new CompletionEvent();
        e.done.complete(null);
        return e;
    }

    public CompletionStage<Void> stage() {
        return done;
    }

    public boolean isDone() {
        return done.isDone();
    }

    /**
     * Asks the device not to start the work. True when it will not run (the event then fails with
     * {@link java.util.concurrent.CancellationException}); false when it already started or finished.
     */
    public boolean cancel() {
        return startNanos == 0 && done.cancel(false);
    }

    /** Nanoseconds the device spent on the work, once done (0 before it started). */
    public long elapsedNanos() {
        long s = startNanos;
        long e = endNanos;
        return s == 0 || e == 0 ? 0 : e - s;
    }

    // ---- for device implementations ------------------------------------------------------------------------------

    /** Marks the work started; false when it was cancelled first (the device must then skip it). */
    public boolean start() {
        if (done.isDone()) {
            return false;
        }
        startNanos = System.nanoTime();
        return !done.isDone();
    }

    public void complete() {
        endNanos = System.nanoTime();
        done.complete(null);
    }

    public void fail(Throwable error) {
        endNanos = System.nanoTime();
        done.completeExceptionally(error);
    }
}
