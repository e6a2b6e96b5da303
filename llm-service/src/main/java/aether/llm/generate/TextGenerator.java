package aether.llm.generate;

import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.Sequence;
import aether.llm.sampling.Sampler;
import aether.llm.sampling.SamplingWorkspace;
import aether.llm.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Generates text for one or more sequences of one {@link InferenceModel}. Each {@link #step()} runs one model step
 * over every active generation: a decode entry (one token) for each generation that is decoding, then prefill chunks
 * for those still reading their prompt, all within {@code batchSize} tokens; then it samples a token for every
 * generation whose tokens have all been run. A generation ends on an end-of-generation or stop token, a stop string,
 * its token limit, a full context (or, with context shift, goes on after re-running a kept tail), cancellation or an
 * error; its {@link Completion} is then available from its {@link ActiveGeneration}.
 *
 * <p>Single-sequence use is {@link #generate}. Not thread-safe: one thread submits and steps (the sequences and the
 * model are single-threaded too). Per token, the loop allocates only the engine contract's {@code BatchEntry} record.
 */
public final class TextGenerator {

    private final InferenceModel model;
    private final Tokenizer tokenizer;
    private final int batchSize;
    private final int maxActive;
    private final int vocabSize;
    private final float[] logits;
    private final SamplingWorkspace workspace;
    private final List<ActiveGeneration> active = new ArrayList<>();
    private final List<BatchEntry> entries = new ArrayList<>();
    private final List<ActiveGeneration> owners = new ArrayList<>();

    /**
     * @param batchSize tokens per model step at most (prompts longer than that are prefilled in chunks)
     * @param maxActive generations that may be active at once
     */
    public TextGenerator(InferenceModel model, Tokenizer tokenizer, int batchSize, int maxActive) {
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        if (batchSize < 1 || maxActive < 1) {
            throw new IllegalArgumentException("batch size " + batchSize + ", max active " + maxActive
                    + " (expected 1+ each)");
        }
        this.vocabSize = model.config().vocabSize();
        if (tokenizer.vocabSize() > vocabSize) {
            throw new IllegalArgumentException("tokenizer of " + tokenizer.vocabSize()
                    + " tokens for a model with " + vocabSize + " logits (expected at most as many tokens as logits)");
        }
        this.batchSize = batchSize;
        this.maxActive = maxActive;
        this.logits = new float[Math.multiplyExact(maxActive, vocabSize)];
        this.workspace = new SamplingWorkspace(vocabSize);
    }

    public InferenceModel model() {
        return model;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /**
     * Starts generating for {@code request} in {@code sequence} (owned by the caller, who closes it afterwards).
     *
     * @param cachedTokens how many leading prompt tokens the sequence already holds (from an earlier request with the
     *                     same prefix): they are not run again; the sequence is truncated to them (and to at most
     *                     prompt length - 1, since the last prompt token must run to give logits)
     * @throws IllegalArgumentException when the prompt does not fit the context, {@code cachedTokens} is out of range,
     *                                  the sequence is closed or already in use
     * @throws IllegalStateException    when {@code maxActive} generations are active
     */
    public ActiveGeneration submit(GenerationRequest request, Sequence sequence, int cachedTokens,
            GenerationListener listener) {
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(sequence, "sequence");
        Objects.requireNonNull(listener, "listener");
        int promptLength = request.prompt().length;
        if (promptLength > model.contextSize()) {
            throw new IllegalArgumentException("prompt of " + promptLength + " tokens does not fit the context size "
                    + model.contextSize());
        }
        if (sequence.isClosed()) {
            throw new IllegalArgumentException("sequence is closed");
        }
        if (cachedTokens < 0 || cachedTokens > Math.min(promptLength, sequence.length())) {
            throw new IllegalArgumentException("cached tokens " + cachedTokens + " (expected 0.."
                    + Math.min(promptLength, sequence.length()) + ": at most the prompt and the sequence length)");
        }
        for (ActiveGeneration g : active) {
            if (g.sequence() == sequence) {
                throw new IllegalArgumentException("sequence is already generating");
            }
        }
        if (active.size() == maxActive) {
            throw new IllegalStateException(maxActive + " generations already active (the most this generator takes)");
        }
        for (int id : request.prompt()) {
            if (id < 0 || id >= vocabSize) {
                throw new IllegalArgumentException("prompt token " + id + " (expected 0.." + (vocabSize - 1) + ")");
            }
        }
        int reuse = Math.min(cachedTokens, promptLength - 1);
        sequence.truncate(reuse);
        var sampler = new Sampler(request.sampling(), workspace);
        var generation = new ActiveGeneration(request, sequence, reuse, listener, tokenizer, sampler,
                model.contextSize());
        active.add(generation);
        return generation;
    }

    /** Runs {@code request} to the end in a sequence of its own (closed afterwards). */
    public Completion generate(GenerationRequest request, GenerationListener listener) {
        try (Sequence sequence = model.newSequence()) {
            return generate(request, sequence, 0, listener);
        }
    }

    /**
     * Runs {@code request} to the end in {@code sequence}, reusing {@code cachedTokens} of it (see {@link #submit}).
     * Other active generations advance too.
     *
     * @throws RuntimeException the error of a generation that ended with {@link FinishReason#ERROR}
     */
    public Completion generate(GenerationRequest request, Sequence sequence, int cachedTokens,
            GenerationListener listener) {
        ActiveGeneration g = submit(request, sequence, cachedTokens, listener);
        while (!g.isDone()) {
            step();
        }
        Completion c = g.completion();
        if (c.error() != null) {
            throw c.error();
        }
        return c;
    }

    public boolean hasActive() {
        return !active.isEmpty();
    }

    public int activeCount() {
        return active.size();
    }

    /** One model step over the active generations; finished ones are dropped from the active set. */
    public void step() {
        long now = System.nanoTime();
        for (int i = 0; i < active.size(); i++) {   // indexed loops: no iterator per step
            ActiveGeneration g = active.get(i);
            if (g.cancelRequested()) {
                g.finish(FinishReason.CANCELLED, null, now);
            }
        }
        active.removeIf(ActiveGeneration::isDone);
        if (active.isEmpty()) {
            return;
        }
        entries.clear();
        owners.clear();
        int budget = batchSize;
        for (int i = 0; i < active.size(); i++) {    // decode entries first: they keep latency low
            ActiveGeneration g = active.get(i);
            if (budget > 0 && g.pending() == 1) {
                if (g.fed() + 1 > model.contextSize() && !contextFull(g, now)) {
                    continue;
                }
                if (g.pending() == 1) {
                    budget -= add(g, 1, now);
                }
            }
        }
        for (int i = 0; i < active.size(); i++) {    // then prefill chunks (a shifted context re-runs its tail here)
            ActiveGeneration g = active.get(i);
            if (budget > 0 && !g.isDone() && g.pending() > 1) {
                budget -= add(g, Math.min(g.pending(), budget), now);
            }
        }
        if (!entries.isEmpty()) {
            runStep(now);
        }
        active.removeIf(ActiveGeneration::isDone);
    }

    /** The sequence is full: shift (then its tail is a prefill) or finish. Returns whether it still runs this step. */
    private boolean contextFull(ActiveGeneration g, long now) {
        if (g.request().contextShift() && g.shiftContext()) {
            return g.pending() == 1;
        }
        g.finish(FinishReason.CONTEXT_FULL, null, now);
        return false;
    }

    private int add(ActiveGeneration g, int count, long now) {
        g.stepStarting(now);
        entries.add(new BatchEntry(g.sequence(), g.tokenArray(), g.fed(), g.fed() + count));
        owners.add(g);
        return count;
    }

    private void runStep(long now) {
        try {
            model.step(entries, logits);
        } catch (InferenceModel.KvCacheFullException e) {
            // nothing changed; the most recently submitted generation in the step gives way, the rest retry next step
            ActiveGeneration victim = owners.getFirst();
            for (ActiveGeneration g : owners) {
                if (active.indexOf(g) > active.indexOf(victim)) {
                    victim = g;
                }
            }
            victim.finish(FinishReason.CONTEXT_FULL, null, System.nanoTime());
            return;
        } catch (RuntimeException e) {
            for (ActiveGeneration g : owners) {
                g.finish(FinishReason.ERROR, e, System.nanoTime());
            }
            return;
        }
        long after = System.nanoTime();
        for (int i = 0; i < owners.size(); i++) {
            ActiveGeneration g = owners.get(i);
            g.ran(entries.get(i).length());
            if (g.readyToSample()) {
                g.sample(logits, i * vocabSize, after);
            }
        }
    }
}
