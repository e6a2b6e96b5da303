package aether.llm.engine;

import aether.llm.model.ModelConfig;
import aether.llm.sampling.Argmax;
import aether.llm.sampling.CandidateRequest;
import aether.llm.sampling.Candidates;
import java.util.List;

/**
 * A loaded model that runs forward steps for many sequences at once: the contract between the model execution (KV
 * memory, forward graphs, devices) and what drives it (the {@code run}/{@code chat}/{@code bench} commands, the
 * serving engine's continuous batching). One step takes any mix of sequences, each with one or more new tokens (a
 * prefill chunk or one decode token), appends them to those sequences and yields the logits of each entry's last
 * token (or, on request, a row per token: logits, or the final hidden states for embeddings).
 *
 * <p>Not thread-safe: one thread (the engine loop) drives a model and its sequences.
 */
public interface InferenceModel extends AutoCloseable {

    ModelConfig config();

    /** Positions one sequence may hold at most (the context window the model was opened with). */
    int contextSize();

    /** A new empty sequence; its KV memory is taken from the model's pool as it grows and returned on close. */
    Sequence newSequence();

    /**
     * Runs the tokens {@code [from, to)} of every entry through the model in one step, appends them to the entry's
     * sequence and writes the logits of the entry's last token to {@code logits[i * vocab, (i + 1) * vocab)} for the
     * i-th entry ({@code vocab} = {@code config().vocabSize()}). The decode path: it allocates nothing.
     *
     * @throws IllegalArgumentException for an empty batch, an empty entry, a token id outside the vocabulary, a closed
     *                                  sequence, a sequence that appears twice, or a logits array that is too short
     * @throws KvCacheFullException     when a sequence would pass {@link #contextSize()} or the pool has no free
     *                                  memory for the new positions; no sequence is changed
     */
    default void step(List<BatchEntry> batch, float[] logits) {
        step(batch, Output.LAST_LOGITS, logits);
    }

    /**
     * {@link #step(List, float[])} with a choice of what comes out: the last token's logits per entry, or one row per
     * new token ({@link Output#ALL_LOGITS} for prompt log-probabilities, {@link Output#ALL_HIDDEN} for embeddings), in
     * batch order: entry 0's tokens first. Rows of {@code width} floats ({@link Output#width}) go to {@code out[r *
     * width]} for the r-th row.
     *
     * @throws IllegalArgumentException as {@link #step(List, float[])}, or when {@code out} is shorter than rows ×
     *                                  width
     * @throws KvCacheFullException     as {@link #step(List, float[])}
     */
    void step(List<BatchEntry> batch, Output output, float[] out);

    /**
     * {@link #step(List, float[])} for callers that need only the greedy token of some entries: for entry i with
     * {@code logitsWanted[i]}, its logits go to row i of {@code logits} as usual; for the others, {@code argmaxOut[i]}
     * receives the first largest logit's token ({@link Argmax#first}: strict {@code >}, ties keep the lower id) and row
     * i of {@code logits} is left unspecified. An engine that computes logits on a device can then copy one int for
     * such an entry instead of a vocab-sized row; this default runs the normal step and takes the argmax on the host.
     * {@code argmaxOut[i]} is unspecified for entries whose logits are wanted.
     *
     * @throws IllegalArgumentException as {@link #step(List, float[])}, or when {@code logitsWanted} or {@code
     *                                  argmaxOut} has fewer than {@code batch.size()} elements
     * @throws KvCacheFullException     as {@link #step(List, float[])}
     * @throws IllegalStateException    after the step, when an entry whose argmax was asked for has a NaN or +Infinity
     *                                  logit or only -Infinity ones (as {@link Argmax#first})
     */
    default void step(List<BatchEntry> batch, float[] logits, boolean[] logitsWanted, int[] argmaxOut) {
        checkArgmaxArrays(batch, logitsWanted, argmaxOut);
        step(batch, logits);
        int vocab = config().vocabSize();
        for (int i = 0; i < batch.size(); i++) {
            if (!logitsWanted[i]) {
                argmaxOut[i] = Argmax.first(logits, i * vocab, vocab);
            }
        }
    }

    /**
     * A step whose entries each say what they need of their last token's logits ({@link RowKind}): the logits row
     * ({@code LOGITS}: row i of {@code logits}), the greedy token ({@code ARGMAX}: {@code argmaxOut[i]}, as {@link
     * #step(List, float[], boolean[], int[])}), or sampling candidates ({@code CANDIDATES}: row i of {@code
     * candidates}, computed with {@code requests[i].adjustments()}; when {@code requests[i].decides(candidates, i)} is
     * false, row i of {@code logits} holds the raw logits as well). An engine that computes logits on a device then
     * copies about 0.5 KB for a sampled entry instead of its vocab-sized row, and the whole row only for an entry its
     * candidates cannot decide. This default runs {@link #step(List, float[], boolean[], int[])} and computes the
     * candidates on the host ({@link Candidates#computeOnHost}), so every engine gives the same candidates from the same logits; rows of
     * {@code logits} that are not promised above are unspecified.
     *
     * @throws IllegalArgumentException as {@link #step(List, float[])}, when an array has fewer than {@code
     *                                  batch.size()} elements, a {@code CANDIDATES} entry has no request, or {@code
     *                                  candidates} has fewer rows than the batch
     * @throws KvCacheFullException     as {@link #step(List, float[])}
     * @throws IllegalStateException    as {@link #step(List, float[], boolean[], int[])} for {@code ARGMAX} entries
     */
    default void step(List<BatchEntry> batch, float[] logits, RowKind[] kinds, int[] argmaxOut,
            CandidateRequest[] requests, Candidates candidates) {
        checkRowKinds(batch, kinds, argmaxOut, requests, candidates);
        // the argmax step, so that an engine which takes argmaxes on its device keeps doing so for ARGMAX entries;
        // this array is per call, but the serving engine asks for candidates only where samplesCandidates() is true,
        // and such engines implement this step themselves
        boolean[] wanted = new boolean[batch.size()];
        for (int i = 0; i < wanted.length; i++) {
            wanted[i] = kinds[i] != RowKind.ARGMAX;
        }
        step(batch, logits, wanted, argmaxOut);
        int vocab = config().vocabSize();
        for (int i = 0; i < batch.size(); i++) {
            if (kinds[i] == RowKind.CANDIDATES) {
                candidates.computeOnHost(logits, i * vocab, vocab, requests[i], i);
            }
        }
    }

    /**
     * Whether asking this engine for {@code CANDIDATES} saves work: true for an engine that selects them where its
     * logits are (a GPU) and so avoids copying vocab-sized rows. False by default: an engine whose logits are already in
     * host memory would only add a pass over the row ({@link Candidates#computeOnHost}) before the same sampling, so
     * the serving engine asks it for {@code LOGITS} instead. The candidate step still works on every engine.
     */
    default boolean samplesCandidates() {
        return false;
    }

    /** The argument checks of {@link #step(List, float[], RowKind[], int[], CandidateRequest[], Candidates)}. */
    static void checkRowKinds(List<BatchEntry> batch, RowKind[] kinds, int[] argmaxOut, CandidateRequest[] requests,
            Candidates candidates) {
        int n = batch.size();
        if (kinds.length < n || argmaxOut.length < n || requests.length < n || candidates.rows() < n) {
            throw new IllegalArgumentException("kinds of " + kinds.length + ", argmaxOut of " + argmaxOut.length
                    + ", requests of " + requests.length + " elements and candidates of " + candidates.rows()
                    + " rows for a batch of " + n + " entries (expected at least one per entry)");
        }
        for (int i = 0; i < n; i++) {
            if (kinds[i] == null || kinds[i] == RowKind.CANDIDATES && requests[i] == null) {
                throw new IllegalArgumentException("entry " + i + ": kind " + kinds[i]
                        + (kinds[i] == null ? " (expected LOGITS, ARGMAX or CANDIDATES)" : " without a request"));
            }
        }
    }

    /** What {@link #step(List, float[], RowKind[], int[], CandidateRequest[], Candidates)} gives for an entry. */
    enum RowKind {
        /** The last token's logits row. */
        LOGITS,
        /** The first largest logit's token ({@link Argmax#first}). */
        ARGMAX,
        /** Sampling {@link Candidates} of the adjusted logits, and the logits too when they do not decide the token. */
        CANDIDATES
    }

    /** The argument checks of {@link #step(List, float[], boolean[], int[])}, for implementations. */
    static void checkArgmaxArrays(List<BatchEntry> batch, boolean[] logitsWanted, int[] argmaxOut) {
        if (logitsWanted.length < batch.size() || argmaxOut.length < batch.size()) {
            throw new IllegalArgumentException("logitsWanted of " + logitsWanted.length + " and argmaxOut of "
                    + argmaxOut.length + " elements for a batch of " + batch.size()
                    + " entries (expected at least one per entry)");
        }
    }

    /**
     * Whether {@link #step(List, Output, float[])} computes {@code output} at all (the CPU engine computes every
     * kind; the CUDA engine only {@link Output#LAST_LOGITS}). Callers check it up front to refuse a request cleanly
     * instead of failing its step.
     */
    default boolean computes(Output output) {
        return true;
    }

    /** Occupancy of the KV memory pool (for metrics and admission control). */
    KvStats kvStats();

    /** Frees the KV pool and whatever the model holds open (its file); sequences become unusable. */
    @Override
    void close();

    /** What a step writes out. */
    enum Output {
        /** The logits of each entry's last token: one row of vocab floats per entry (decoding, prefill). */
        LAST_LOGITS,
        /** The logits of every new token: one row of vocab floats per token (prompt log-probabilities). */
        ALL_LOGITS,
        /**
         * The final hidden state of every new token, after the output norm and before the LM head: one row of
         * {@code n_embd} floats per token (embeddings). The LM head is not computed.
         */
        ALL_HIDDEN;

        /** Floats per row for {@code config}. */
        public int width(ModelConfig config) {
            return this == ALL_HIDDEN ? config.embeddingLength() : config.vocabSize();
        }

        /** Rows a step of {@code batch} writes. */
        public long rows(List<BatchEntry> batch) {
            if (this == LAST_LOGITS) {
                return batch.size();
            }
            long n = 0;
            for (int i = 0; i < batch.size(); i++) {
                n += batch.get(i).length();
            }
            return n;
        }
    }

    /** One sequence's share of a step: its tokens {@code [from, to)} are appended in order. */
    record BatchEntry(Sequence sequence, int[] tokens, int from, int to) {
        public BatchEntry {
            java.util.Objects.requireNonNull(sequence, "sequence");
            java.util.Objects.requireNonNull(tokens, "tokens");
            if (from < 0 || to > tokens.length || from >= to) {
                throw new IllegalArgumentException("batch entry tokens [" + from + ", " + to + ") of an array of "
                        + tokens.length + " (expected a non-empty range inside the array)");
            }
        }

        public static BatchEntry of(Sequence sequence, int... tokens) {
            return new BatchEntry(sequence, tokens, 0, tokens.length);
        }

        public int length() {
            return to - from;
        }
    }

    /**
     * KV memory in blocks of {@code blockPositions} positions (all layers of those positions together).
     *
     * @param totalBlocks blocks in the pool
     * @param usedBlocks  blocks held by open sequences
     */
    record KvStats(int blockPositions, int totalBlocks, int usedBlocks) {
        public int freeBlocks() {
            return totalBlocks - usedBlocks;
        }
    }

    /** Thrown by {@link #step} when the new positions do not fit; the sequences are left as they were. */
    final class KvCacheFullException extends IllegalStateException {
        public KvCacheFullException(String message) {
            super(message);
        }
    }
}
