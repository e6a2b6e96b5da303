package aether.llm.server;

import aether.llm.engine.InferenceModel;
import aether.llm.engine.Sequence;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * A request that reads whole token sequences without generating: embeddings ({@link EmbeddingJob}) or prompt
 * log-probabilities ({@link ScoringJob}). The {@link ServingEngine} admits it like a generation (it takes one
 * concurrency slot and waits in the same queue), runs its inputs in chunks in a model step of its own between decode
 * steps (so the running generations' steps keep their shape and their outputs), and closes each input's sequence as
 * soon as its last chunk ran, which frees its KV blocks.
 *
 * <p>The engine thread calls {@link #accept}, {@link #restart} and {@link #finish}; {@link #result()} completes there,
 * with the value or the error, and may be waited on from any thread.
 *
 * @param <R> what the job produces
 */
abstract sealed class PromptJob<R> implements ServingEngine.Handle, ServingEngine.Queued
        permits EmbeddingJob, ScoringJob {

    private final int[][] inputs;
    private final InferenceModel.Output output;
    private final CompletableFuture<R> result = new CompletableFuture<>();
    private volatile boolean cancelled;

    // engine-thread state
    final Sequence[] sequences;
    final int[] fed;
    int finished;

    /**
     * @param inputs the token sequences, each fed through the model in full ({@link #tokens} may feed less)
     * @param output the rows the job reads: {@link InferenceModel.Output#ALL_HIDDEN} or {@code ALL_LOGITS}
     */
    PromptJob(int[][] inputs, InferenceModel.Output output) {
        this.inputs = Objects.requireNonNull(inputs, "inputs");
        this.output = Objects.requireNonNull(output, "output");
        if (output == InferenceModel.Output.LAST_LOGITS) {
            throw new IllegalArgumentException("a prompt job reads a row per token");
        }
        if (inputs.length == 0) {
            throw new IllegalArgumentException("a prompt job without inputs");
        }
        this.sequences = new Sequence[inputs.length];
        this.fed = new int[inputs.length];
    }

    final int inputCount() {
        return inputs.length;
    }

    final int[] input(int i) {
        return inputs[i];
    }

    /** Tokens of input {@code i} that run through the model (all of them, unless the job needs fewer rows). */
    int tokens(int i) {
        return inputs[i].length;
    }

    final InferenceModel.Output output() {
        return output;
    }

    /** Rows {@code [fed[i], fed[i] + count)} of input {@code i}, {@code width} floats each from {@code out[offset]}. */
    abstract void accept(int input, float[] out, int offset, int count, int width);

    /** Input {@code i}'s sequence was dropped (the KV pool was needed): forget its rows, it runs again from 0. */
    abstract void restart(int input);

    /** Every input ran: the job's value. */
    abstract R finish();

    /**
     * Waits for the result on a request thread; the job is cancelled (its sequences freed) when the wait ends any other
     * way. An {@link ApiException} from the engine (admission, bad input) passes through; anything else is an internal
     * failure naming {@code what}.
     */
    final R await(String what) {
        try {
            return result.get();
        } catch (InterruptedException e) {
            cancel();
            Thread.currentThread().interrupt();
            throw ApiException.unavailable("the server is shutting down");
        } catch (java.util.concurrent.ExecutionException e) {
            cancel();
            if (e.getCause() instanceof ApiException api) {
                throw api;
            }
            throw new IllegalStateException(what + " failed: " + e.getCause(), e.getCause());
        }
    }

    final CompletableFuture<R> result() {
        return result;
    }

    final boolean isCancelled() {
        return cancelled;
    }

    @Override
    public final void cancel() {
        cancelled = true;
    }

    /** Engine thread: closes every open sequence (freeing its blocks). */
    final void closeSequences() {
        for (int i = 0; i < sequences.length; i++) {
            if (sequences[i] != null) {
                sequences[i].close();
                sequences[i] = null;
            }
        }
    }

    /** Engine thread: closes the open sequences of unfinished inputs and starts those inputs over. */
    final void restartOpenInputs() {
        for (int i = 0; i < sequences.length; i++) {
            if (sequences[i] != null) {
                sequences[i].close();
                sequences[i] = null;
                fed[i] = 0;
                restart(i);
            }
        }
    }

    final void complete() {
        try {
            result.complete(finish());
        } catch (RuntimeException e) {
            result.completeExceptionally(e);
        }
    }

    final void fail(RuntimeException error) {
        closeSequences();
        result.completeExceptionally(error);
    }
}
