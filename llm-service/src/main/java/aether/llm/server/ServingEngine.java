package aether.llm.server;

import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.InferenceModel.KvCacheFullException;
import aether.llm.engine.InferenceModel.KvStats;
import aether.llm.engine.InferenceModel.RowKind;
import aether.llm.engine.Sequence;
import aether.llm.server.GenerationListener.FinishReason;
import aether.llm.server.GenerationListener.GeneratedToken;
import aether.llm.sampling.CandidateRequest;
import aether.llm.sampling.Candidates;
import aether.llm.tokenizer.StreamingDecoder;
import aether.llm.tokenizer.Tokenizer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Continuous batching over one {@link InferenceModel}. A single engine thread owns the model and every sequence:
 * each loop iteration drops cancelled requests (closing their sequences, which frees their KV blocks), admits waiting
 * requests up to {@code maxConcurrency}, and runs one {@link InferenceModel#step}: one token for every decoding
 * sequence plus prompt chunks of newly admitted ones (at most {@code prefillChunk} prompt tokens per step), so running
 * streams keep producing a token per step while long prompts are read. Each request samples with its own
 * {@link TokenSampler}. Prompt jobs (embeddings, prompt scoring; {@link PromptJob}) are admitted the same way and
 * run in a model step of their own between those steps, at most {@code prefillChunk} of their tokens at a time.
 *
 * <p>Admission: {@link #submit} accepts while fewer than {@code maxConcurrency + queueSize} requests are admitted or
 * waiting, else throws a 429 {@link ApiException}. When the KV pool runs out mid-step, the most recently admitted
 * sequence is evicted and later recomputed from its tokens (its client sees no difference but latency).
 *
 * <p>Thread-safe: {@link #submit}, {@link Handle#cancel} and the gauges may be called from any thread; listeners are
 * called on the engine thread.
 */
public final class ServingEngine implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(ServingEngine.class.getName());

    /**
     * @param maxConcurrency sequences in the running batch at most
     * @param queueSize      requests waiting beyond those at most
     * @param prefillChunk   prompt tokens per step at most (over all prefilling sequences)
     * @param prefixCache    finished sequences kept with their KV blocks so a later prompt that starts with the
     *                       same tokens (a shared system prompt, the next turn of a chat) skips that prefill; 0 = off
     */
    public record Settings(int maxConcurrency, int queueSize, int prefillChunk, int prefixCache) {
        public Settings {
            if (maxConcurrency < 1 || queueSize < 0 || prefillChunk < 1 || prefixCache < 0) {
                throw new IllegalArgumentException("engine settings max-concurrency " + maxConcurrency + ", queue "
                        + queueSize + ", prefill chunk " + prefillChunk + ", prefix cache " + prefixCache
                        + " (expected max-concurrency >= 1, queue >= 0, prefill chunk >= 1, prefix cache >= 0)");
            }
        }

        /** Without a prefix cache. */
        public Settings(int maxConcurrency, int queueSize, int prefillChunk) {
            this(maxConcurrency, queueSize, prefillChunk, 0);
        }
    }

    /** A submitted request: cancel it to stop generation and free its memory before the next step. */
    public interface Handle {
        void cancel();
    }

    /** What waits in the admission queue: a generation, or a {@link PromptJob} (embeddings, prompt scoring). */
    sealed interface Queued permits Job, PromptJob {}

    /** Floats of per-token rows one prompt-job step may write at most (so prompt scoring of a large vocabulary takes
     * smaller chunks, not a huge buffer). */
    static final int PROMPT_OUT_FLOATS = 1 << 22;

    private final InferenceModel model;
    private final Tokenizer tokenizer;
    private final TokenSampler.Factory samplers;
    private final Settings settings;
    private final ServerMetrics metrics;
    private final int vocab;
    private final int contextSize;
    private final LinkedBlockingQueue<Queued> queue = new LinkedBlockingQueue<>();
    private final AtomicInteger admitted = new AtomicInteger();
    private final Thread thread;
    private volatile boolean running = true;
    private volatile int activeCount;
    private volatile KvStats kvStats;
    private volatile int cachedBlocks;

    // engine-thread state
    private final List<Active> active = new ArrayList<>();
    private final ArrayDeque<Active> preempted = new ArrayDeque<>();
    /** Finished sequences kept for their prefix, oldest first. */
    private final ArrayDeque<Cached> idle = new ArrayDeque<>();
    private final List<BatchEntry> batch = new ArrayList<>();
    private final List<Active> batchOwners = new ArrayList<>();
    private final List<Active> finishing = new ArrayList<>();
    private final float[] logits;
    private final float[] scratch;
    /** Per batch entry of a step: whether its logits are read (else only its argmax, {@link #step()}). */
    private boolean[] logitsWanted;
    private int[] argmax;
    /** Per batch entry of a step with sampling candidates: its kind, its sampler's request, the candidates. */
    private RowKind[] kinds;
    private CandidateRequest[] requests;
    private Candidates candidates;
    /** Admitted prompt jobs (embeddings, scoring), oldest first; each holds a concurrency slot. */
    private final List<PromptJob<?>> prompts = new ArrayList<>();
    private final List<BatchEntry> promptBatch = new ArrayList<>();
    private final List<PromptJob<?>> promptOwners = new ArrayList<>();
    private final List<Integer> promptInputs = new ArrayList<>();
    private float[] promptOut = new float[0];
    /** Set when a generation step found the pool full and prompt work gave its blocks back: it waits for a
     * generation step to succeed before it takes blocks again (else the two could take turns failing forever). */
    private boolean promptsYield;
    private long admissions;

    public ServingEngine(InferenceModel model, Tokenizer tokenizer, TokenSampler.Factory samplers, Settings settings,
            ServerMetrics metrics) {
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.samplers = Objects.requireNonNull(samplers, "samplers");
        this.settings = Objects.requireNonNull(settings, "settings");
        this.metrics = Objects.requireNonNull(metrics, "metrics");
        this.vocab = model.config().vocabSize();
        this.contextSize = model.contextSize();
        this.logits = new float[Math.multiplyExact(settings.maxConcurrency(), vocab)];
        this.logitsWanted = new boolean[settings.maxConcurrency()];
        this.argmax = new int[settings.maxConcurrency()];
        this.kinds = new RowKind[settings.maxConcurrency()];
        this.requests = new CandidateRequest[settings.maxConcurrency()];
        this.candidates = new Candidates(settings.maxConcurrency());
        this.scratch = new float[vocab];
        this.kvStats = model.kvStats();
        metrics.bindEngine(queue::size, () -> activeCount, () -> kvStats, () -> cachedBlocks);
        this.thread = Thread.ofPlatform().name("aether-engine").daemon().unstarted(this::loop);
        thread.start();
    }

    public int contextSize() {
        return contextSize;
    }

    /** The served model's hyper-parameters. */
    public aether.llm.model.ModelConfig modelConfig() {
        return model.config();
    }

    /** Sequences in the running batch at most. */
    public int maxConcurrency() {
        return settings.maxConcurrency();
    }

    public boolean isRunning() {
        return running && thread.isAlive();
    }

    /** Requests waiting for a slot. */
    public int queued() {
        return queue.size();
    }

    /** Sequences in the running batch (as of the last step). */
    public int active() {
        return activeCount;
    }

    /** KV pool occupancy as of the last step (blocks held by the prefix cache count as used). */
    public KvStats kvStats() {
        return kvStats;
    }

    /** KV blocks held by finished sequences kept in the prefix cache, as of the last step (positions / block size). */
    public int cachedBlocks() {
        return cachedBlocks;
    }

    /**
     * Queues a request. The listener hears its output on the engine thread.
     *
     * @throws ApiException 429 when {@code maxConcurrency + queueSize} requests are already admitted or waiting, 503
     *                      when the engine has stopped
     */
    public Handle submit(GenerationRequest request, GenerationListener listener) {
        if (!running) {
            throw ApiException.unavailable("the server is shutting down");
        }
        // a bad id would fail the whole step it joins, so it is refused here, never inside a shared step
        int[] prompt = request.prompt();
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= vocab) {
                throw ApiException.invalid("prompt", "token id " + prompt[i] + " at index " + i
                        + " is outside the model's vocabulary (0.." + (vocab - 1) + ")");
            }
        }
        if (prompt.length > contextSize) {
            throw ApiException.invalid("prompt", "context_length_exceeded", "the prompt has " + prompt.length
                    + " tokens; the context holds " + contextSize);
        }
        reserveSlot();
        var job = new Job(request, listener, System.nanoTime());
        metrics.promptTokens(request.prompt().length);
        queue.add(job);
        return job;
    }

    /**
     * Queues a prompt job (embeddings, prompt scoring) under the same admission as generations. Its {@link
     * PromptJob#result()} completes on the engine thread.
     *
     * @throws ApiException 400 naming {@code field} for an empty input, a token id outside the vocabulary or an input
     *                      longer than the context; 429 / 503 as {@link #submit(GenerationRequest, GenerationListener)}
     */
    public <R> PromptJob<R> submit(PromptJob<R> job, String field) {
        if (!running) {
            throw ApiException.unavailable("the server is shutting down");
        }
        if (!model.computes(job.output())) {   // refused before admission: the step would fail on the engine thread
            String what = job.output() == InferenceModel.Output.ALL_HIDDEN ? "embeddings (hidden states per token)"
                    : "prompt log-probabilities (echo with logprobs: logits per prompt token)";
            throw ApiException.notImplemented(field, what + " are not computed by this server's engine (the GPU "
                    + "engine computes last-token logits only); start the server with --device cpu for them");
        }
        for (int i = 0; i < job.inputCount(); i++) {
            int[] ids = job.input(i);
            String path = job.inputCount() == 1 ? field : field + "[" + i + "]";
            if (ids.length == 0) {
                throw ApiException.invalid(path, "'" + path + "' is empty");
            }
            for (int t = 0; t < ids.length; t++) {
                if (ids[t] < 0 || ids[t] >= vocab) {
                    throw ApiException.invalid(path, "token id " + ids[t] + " at index " + t + " of '" + path
                            + "' is outside the model's vocabulary (0.." + (vocab - 1) + ")");
                }
            }
            if (ids.length > contextSize) {
                throw ApiException.invalid(path, "context_length_exceeded", "'" + path + "' has " + ids.length
                        + " tokens; the context holds " + contextSize);
            }
        }
        reserveSlot();
        queue.add(job);
        return job;
    }

    private void reserveSlot() {
        int limit = settings.maxConcurrency() + settings.queueSize();
        while (true) {
            int n = admitted.get();
            if (n >= limit) {
                throw ApiException.tooMany("server_overloaded", "the server is at capacity: " + settings.maxConcurrency()
                        + " requests running and " + settings.queueSize() + " waiting; retry later", 1);
            }
            if (admitted.compareAndSet(n, n + 1)) {
                return;
            }
        }
    }

    @Override
    public void close() {
        running = false;
        thread.interrupt();
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void loop() {
        try {
            while (running) {
                long iterationStart = LoopProfile.ON ? System.nanoTime() : 0;
                reapCancelled();
                admit();
                if (active.isEmpty() && prompts.isEmpty()) {
                    Queued next = queue.poll(50, TimeUnit.MILLISECONDS);
                    if (next != null) {
                        dispatch(next);
                    }
                    continue;
                }
                if (!prompts.isEmpty() && !(promptsYield && !active.isEmpty())) {
                    promptStep();
                }
                if (!active.isEmpty()) {
                    long t0 = LoopProfile.ON ? System.nanoTime() : 0;
                    step();
                    if (LoopProfile.ON) {
                        loopProfile.step(System.nanoTime() - t0, batch.size());
                    }
                }
                publish();
                if (LoopProfile.ON) {
                    loopProfile.iteration(System.nanoTime() - iterationStart);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Throwable t) {
            LOG.log(Level.SEVERE, "engine loop failed; failing every request", t);
            running = false;
        } finally {
            if (LoopProfile.ON) {
                System.err.print(loopProfile.report());
            }
            shutdown();
        }
    }

    private final LoopProfile loopProfile = new LoopProfile();

    private void publish() {
        activeCount = active.size() + prompts.size();
        KvStats kv = model.kvStats();
        int blocks = 0;
        for (Cached c : idle) {
            blocks += (c.tokens.length + kv.blockPositions() - 1) / kv.blockPositions();
        }
        cachedBlocks = blocks;
        kvStats = kv;
    }

    private void reapCancelled() {
        boolean any = false;
        for (int i = active.size() - 1; i >= 0; i--) {
            Active a = active.get(i);
            if (a.job.cancelled) {
                a.sequence.close();
                active.remove(i);
                admitted.decrementAndGet();
                any = true;
            }
        }
        for (var it = preempted.iterator(); it.hasNext(); ) {
            Active a = it.next();
            if (a.job.cancelled) {
                it.remove();
                admitted.decrementAndGet();
            }
        }
        for (int i = prompts.size() - 1; i >= 0; i--) {
            PromptJob<?> p = prompts.get(i);
            if (p.isCancelled()) {
                p.fail(ApiException.invalid(null, "the request was cancelled"));
                prompts.remove(i);
                admitted.decrementAndGet();
                any = true;
            }
        }
        if (any) {
            publish();
        }
    }

    private void admit() {
        while (active.size() + prompts.size() < settings.maxConcurrency()) {
            Active back = preempted.peekFirst();
            if (back != null) {
                // an evicted sequence comes back (before any new request) once its tokens fit the free blocks;
                // re-admitting it earlier would only evict it again
                KvStats kv = model.kvStats();
                long needed = (back.size + kv.blockPositions()) / kv.blockPositions() + 1;
                while (needed > kv.freeBlocks() && !idle.isEmpty()) {
                    idle.pollFirst().sequence.close();
                    kv = model.kvStats();
                }
                if (!active.isEmpty() && needed > kv.freeBlocks()) {
                    break;
                }
                preempted.pollFirst();
                back.sequence = model.newSequence();
                active.add(back);
                continue;
            }
            Queued next = queue.poll();
            if (next == null) {
                break;
            }
            dispatch(next);
        }
        publish();
    }

    private void dispatch(Queued next) {
        switch (next) {
            case Job job -> start(job);
            case PromptJob<?> p -> {
                if (p.isCancelled()) {
                    p.fail(ApiException.invalid(null, "the request was cancelled"));
                    admitted.decrementAndGet();
                } else {
                    prompts.add(p);
                }
            }
        }
    }

    /**
     * One model step for the prompt jobs: up to {@code prefillChunk} of their tokens (inputs in order, several inputs
     * per step), all of the oldest job's output kind. A step of its own, so the generations' step is unchanged. An
     * input starts only when the free KV blocks cover all of it plus one block of headroom per running generation,
     * so prompt work never squeezes a generation out; a finished input's sequence is closed at once.
     */
    private void promptStep() {
        InferenceModel.Output kind = prompts.getFirst().output();
        int width = kind.width(model.config());
        int budget = Math.max(1, Math.min(settings.prefillChunk(), PROMPT_OUT_FLOATS / width));
        if (promptOut.length < budget * width) {
            promptOut = new float[budget * width];
        }
        promptBatch.clear();
        promptOwners.clear();
        promptInputs.clear();
        KvStats kv = model.kvStats();
        int bp = kv.blockPositions();
        long reserved = 0;
        for (PromptJob<?> p : prompts) {
            for (int i = 0; i < p.inputCount(); i++) {
                if (p.sequences[i] != null) {
                    reserved += blocks(p.tokens(i), bp) - blocks(p.fed[i], bp);
                }
            }
        }
        long free = kv.freeBlocks() - reserved - active.size();
        fill:
        for (PromptJob<?> p : prompts) {
            if (p.output() != kind) {
                continue;
            }
            for (int i = 0; i < p.inputCount() && budget > 0; i++) {
                int length = p.tokens(i);
                if (p.fed[i] == length) {
                    continue;
                }
                if (p.sequences[i] == null) {
                    long need = blocks(length, bp);
                    while (need > free && !idle.isEmpty()) {   // kept prefixes give way first
                        Cached c = idle.pollFirst();
                        c.sequence.close();
                        free += blocks(c.tokens.length, bp);
                    }
                    if (need > free) {
                        break fill;
                    }
                    free -= need;
                    p.sequences[i] = model.newSequence();
                }
                int n = Math.min(length - p.fed[i], budget);
                promptBatch.add(new BatchEntry(p.sequences[i], p.input(i), p.fed[i], p.fed[i] + n));
                promptOwners.add(p);
                promptInputs.add(i);
                budget -= n;
            }
            if (budget == 0) {
                break;
            }
        }
        if (promptBatch.isEmpty()) {
            if (active.isEmpty() && idle.isEmpty()) {
                // nothing else holds memory and still no input fits: it never will
                PromptJob<?> p = prompts.removeFirst();
                p.fail(ApiException.invalid(null, "context_length_exceeded", "an input does not fit the KV cache of "
                        + kv.totalBlocks() + " blocks of " + bp + " positions"));
                admitted.decrementAndGet();
            }
            return;   // waits for generations to free blocks
        }
        try {
            model.step(promptBatch, kind, promptOut);
        } catch (KvCacheFullException full) {
            if (!idle.isEmpty()) {
                idle.pollFirst().sequence.close();
            } else {
                prompts.forEach(PromptJob::restartOpenInputs);
            }
            return;
        } catch (RuntimeException e) {
            LOG.log(Level.SEVERE, "model step failed; failing the prompt jobs in it", e);
            for (PromptJob<?> p : List.copyOf(new java.util.LinkedHashSet<>(promptOwners))) {
                p.fail(new IllegalStateException("the model failed: " + e.getMessage(), e));
                if (prompts.remove(p)) {
                    admitted.decrementAndGet();
                }
            }
            return;
        }
        int row = 0;
        for (int e = 0; e < promptBatch.size(); e++) {
            PromptJob<?> p = promptOwners.get(e);
            int i = promptInputs.get(e);
            int n = promptBatch.get(e).length();
            p.accept(i, promptOut, row * width, n, width);
            row += n;
            p.fed[i] += n;
            if (p.fed[i] == p.tokens(i)) {
                p.sequences[i].close();   // its KV blocks are free before the next step
                p.sequences[i] = null;
                if (++p.finished == p.inputCount()) {
                    prompts.remove(p);
                    admitted.decrementAndGet();
                    p.complete();
                }
            }
        }
    }

    private static long blocks(int positions, int blockPositions) {
        return (positions + blockPositions - 1) / blockPositions;
    }

    private void start(Job job) {
        if (job.cancelled) {
            admitted.decrementAndGet();
            return;
        }
        GenerationRequest r = job.request;
        int budget = Math.min(r.maxTokens(), Math.max(1, contextSize - r.prompt().length + 1));
        var a = new Active(job, null, samplers.create(r.sampling(), vocab, budget), tokenizer.streamingDecoder(),
                admissions++);
        if (settings.prefixCache() > 0) {
            reusePrefix(a);
        }
        if (a.sequence == null) {
            a.sequence = model.newSequence();
        }
        active.add(a);
    }

    /** Takes the kept sequence sharing the longest prefix with the prompt, cut back to that prefix. */
    private void reusePrefix(Active a) {
        int[] prompt = a.job.request.prompt();
        Cached best = null;
        int bestLength = 0;
        for (Cached c : idle) {
            int n = Math.min(c.tokens.length, prompt.length);
            int common = 0;
            while (common < n && c.tokens[common] == prompt[common]) {
                common++;
            }
            if (common > bestLength) {
                best = c;
                bestLength = common;
            }
        }
        // at least the prompt's last token must run, for the logits of the first generated token
        int reuse = Math.min(bestLength, prompt.length - 1);
        if (best == null || reuse == 0) {
            metrics.prefixLookup(0);
            return;
        }
        idle.remove(best);
        best.sequence.truncate(reuse);
        a.sequence = best.sequence;
        a.fed = reuse;
        metrics.prefixLookup(reuse);
    }

    private void step() {
        batch.clear();
        batchOwners.clear();
        finishing.clear();
        for (Active a : active) {
            if (a.size - a.fed == 1) {
                if (a.fed + 1 > contextSize) {
                    finishing.add(a);
                } else {
                    add(a, a.fed + 1);
                }
            }
        }
        int budget = settings.prefillChunk();
        for (Active a : active) {
            int remaining = a.size - a.fed;
            if (remaining > 1 && budget > 0) {
                int n = Math.min(remaining, budget);
                add(a, a.fed + n);
                budget -= n;
            }
        }
        for (Active a : finishing) {
            finish(a, FinishReason.LENGTH);
        }
        if (batch.isEmpty()) {
            return;
        }
        if (logitsWanted.length < batch.size()) {
            logitsWanted = new boolean[batch.size()];
            argmax = new int[batch.size()];
            kinds = new RowKind[batch.size()];
            requests = new CandidateRequest[batch.size()];
            candidates = new Candidates(batch.size());
        }
        // a row's logits are read only when it ends the sequence's fed tokens and its request samples from them: a
        // greedy request without log-probabilities takes the model's argmax instead (on a GPU: an int, not a row); a
        // sampled one whose sampler can pick from candidates asks for those where the model selects them on its
        // device (~0.5 KB, the row only when they do not decide the token)
        boolean argmaxRows = false;
        boolean candidateRows = false;
        boolean askCandidates = model.samplesCandidates();   // on the CPU engine they would only add a pass
        for (int i = 0; i < batch.size(); i++) {
            Active a = batchOwners.get(i);
            boolean last = batch.get(i).to() == a.size;
            boolean wanted = last && !TokenSamplers.argmaxSuffices(a.job.request, a.sampler);
            CandidateRequest request = null;
            if (wanted && a.candidatePause > 0) {
                a.candidatePause--;
            } else if (wanted && askCandidates) {
                request = a.sampler.candidateRequest(a.job.request.topLogprobs());
            }
            logitsWanted[i] = wanted;
            argmaxRows |= !wanted;
            candidateRows |= request != null;
            requests[i] = request;
            kinds[i] = !wanted ? RowKind.ARGMAX : request != null ? RowKind.CANDIDATES : RowKind.LOGITS;
        }
        try {
            long t0 = LoopProfile.ON ? System.nanoTime() : 0;
            if (candidateRows) {
                model.step(batch, logits, kinds, argmax, requests, candidates);
            } else if (argmaxRows) {
                model.step(batch, logits, logitsWanted, argmax);
            } else {
                model.step(batch, logits);
            }
            if (LoopProfile.ON) {
                loopProfile.model(System.nanoTime() - t0);
            }
        } catch (KvCacheFullException full) {
            onPoolFull(full);
            return;
        } catch (RuntimeException e) {
            LOG.log(Level.SEVERE, "model step failed; failing the " + batch.size() + " requests in it", e);
            for (Active a : batchOwners) {
                fail(a, new IllegalStateException("the model failed: " + e.getMessage(), e));
            }
            return;
        }
        promptsYield = false;
        for (int i = 0; i < batch.size(); i++) {
            Active a = batchOwners.get(i);
            a.fed = batch.get(i).to();
            if (a.fed == a.size && !a.job.cancelled) {
                if (kinds[i] == RowKind.CANDIDATES && requests[i].decides(candidates, i)) {
                    metrics.tokenFromCandidates();
                    sampleCandidates(a, i);
                } else if (logitsWanted[i]) {
                    if (kinds[i] == RowKind.CANDIDATES && Double.isNaN(requests[i].drawUniform())) {
                        // not after a draw over the whole row: its target fell near a boundary by chance, which
                        // says nothing about the next tokens
                        a.candidatePause = CANDIDATE_PAUSE;
                    }
                    metrics.tokenFromLogits();
                    sample(a, i * vocab);
                } else {
                    metrics.tokenFromArgmax();
                    int token = a.sampler.acceptArgmax(argmax[i]);
                    took(a, token, new GeneratedToken(token, Double.NaN, Logprobs.NO_IDS, Logprobs.NO_VALUES));
                }
            }
        }
    }

    private void add(Active a, int to) {
        batch.add(new BatchEntry(a.sequence, a.tokens, a.fed, to));
        batchOwners.add(a);
    }

    /** Evicts the most recently admitted sequence (it is recomputed when a slot frees), or ends a lone one. */
    private void onPoolFull(KvCacheFullException full) {
        if (!idle.isEmpty()) {   // kept prefixes go first; the step is retried next iteration
            idle.pollFirst().sequence.close();
            return;
        }
        boolean promptMemory = false;
        for (PromptJob<?> p : prompts) {
            for (var s : p.sequences) {
                promptMemory |= s != null;
            }
        }
        if (promptMemory) {   // then prompt work (embeddings) in progress: it starts over once blocks are free
            prompts.forEach(PromptJob::restartOpenInputs);
            promptsYield = true;
            return;
        }
        Active youngest = null;
        for (Active a : active) {
            if (youngest == null || a.order > youngest.order) {
                youngest = a;
            }
        }
        if (youngest == null) {
            return;
        }
        if (active.size() == 1) {
            if (youngest.generated > 0) {
                finish(youngest, FinishReason.LENGTH);
            } else {
                fail(youngest, ApiException.invalid("prompt", "context_length_exceeded",
                        "the prompt does not fit the KV cache: " + full.getMessage()));
            }
            return;
        }
        youngest.sequence.close();
        youngest.fed = 0;
        active.remove(youngest);
        preempted.addFirst(youngest);
        metrics.preemption();
    }

    private void sample(Active a, int offset) {
        GenerationRequest r = a.job.request;
        GeneratedToken info = null;
        int token;
        if (r.topLogprobs() >= 0) {
            System.arraycopy(logits, offset, scratch, 0, vocab);
            token = a.sampler.sample(logits, offset, vocab);
            info = Logprobs.of(scratch, token, r.topLogprobs());
        } else {
            token = a.sampler.sample(logits, offset, vocab);
            info = new GeneratedToken(token, Double.NaN, Logprobs.NO_IDS, Logprobs.NO_VALUES);
        }
        took(a, token, info);
    }

    /**
     * After a token its candidates could not decide (a flat distribution under top-p or min-p: the mass lies past
     * them), the request's next this-many tokens skip the candidates and take the logits row directly: the same tokens
     * either way, without paying for candidates that will likely not decide again (on the CPU engine a wasted pass
     * of {@code exp} over the row; on a GPU a kernel and 0.5 KB).
     */
    static final int CANDIDATE_PAUSE = 8;

    /** {@link #sample} from row {@code row} of the step's candidates (they decide the token: same token, same draw). */
    private void sampleCandidates(Active a, int row) {
        int top = a.job.request.topLogprobs();
        int token = a.sampler.sampleCandidates(candidates, row);
        took(a, token, top >= 0 ? Logprobs.of(candidates, row, token, top, vocab)
                : new GeneratedToken(token, Double.NaN, Logprobs.NO_IDS, Logprobs.NO_VALUES));
    }

    /** The rest of a token's life once chosen (from logits or the model's argmax): metrics, EOS, stop strings, text. */
    private void took(Active a, int token, GeneratedToken info) {
        GenerationRequest r = a.job.request;
        long now = System.nanoTime();
        if (a.generated == 0) {
            metrics.firstToken(now - a.job.submittedNs);
        } else {
            metrics.interToken(now - a.lastTokenNs);
        }
        a.lastTokenNs = now;
        a.generated++;
        metrics.completionToken();
        a.append(token);
        a.pendingTokens.add(info);
        if (!r.ignoreEos() && tokenizer.isEndOfGeneration(token)) {
            finish(a, FinishReason.STOP);
            return;
        }
        a.text.setLength(0);
        a.decoder.accept(token, a.text);
        String out = a.stop.push(a.text);
        if (a.stop.matched()) {
            emit(a, out);
            finish(a, FinishReason.STOP);
            return;
        }
        if (!out.isEmpty()) {
            emit(a, out);
        }
        if (a.generated >= r.maxTokens() || a.size > contextSize) {
            finish(a, FinishReason.LENGTH);
        }
    }

    private void emit(Active a, String text) {
        List<GeneratedToken> tokens = a.pendingTokens.isEmpty() ? List.of() : List.copyOf(a.pendingTokens);
        a.pendingTokens.clear();
        try {
            a.job.listener.onText(text, tokens);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "listener failed; cancelling its request", e);
            a.job.cancelled = true;
        }
    }

    private void finish(Active a, FinishReason reason) {
        if (!a.stop.matched()) {
            String rest = a.stop.push(a.decoder.flush());
            rest += a.stop.flush();
            if (!rest.isEmpty() || !a.pendingTokens.isEmpty()) {
                emit(a, rest);
            }
        } else if (!a.pendingTokens.isEmpty()) {
            emit(a, "");
        }
        if (settings.prefixCache() > 0 && !a.job.cancelled && a.fed > 0) {
            keep(a);
        } else {
            release(a);
        }
        publish();   // before the client hears of the end: /metrics then never shows the finished sequence's blocks
        if (!a.job.cancelled) {
            try {
                a.job.listener.onFinish(reason, a.job.request.prompt().length, a.generated);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "listener failed on finish", e);
            }
        }
    }

    private void fail(Active a, RuntimeException error) {
        release(a);
        if (running) {   // at shutdown the model may be closing: no stats then
            publish();
        }
        if (!a.job.cancelled) {
            try {
                a.job.listener.onError(error);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "listener failed on error", e);
            }
        }
    }

    private void release(Active a) {
        a.sequence.close();
        if (active.remove(a)) {
            admitted.decrementAndGet();
        }
    }

    /** Ends a request but keeps its sequence (the tokens it holds) for later prompts with the same prefix. */
    private void keep(Active a) {
        if (active.remove(a)) {
            admitted.decrementAndGet();
        }
        idle.addLast(new Cached(a.sequence, Arrays.copyOf(a.tokens, a.fed)));
        while (idle.size() > settings.prefixCache()) {
            idle.pollFirst().sequence.close();
        }
    }

    private void shutdown() {
        running = false;
        var gone = ApiException.unavailable("the server is shutting down");
        for (Active a : List.copyOf(active)) {
            fail(a, gone);
        }
        for (Active a : preempted) {
            a.job.listener.onError(gone);
        }
        preempted.clear();
        for (Cached c : idle) {
            c.sequence.close();
        }
        idle.clear();
        for (PromptJob<?> p : prompts) {
            p.fail(gone);
        }
        prompts.clear();
        Queued next;
        while ((next = queue.poll()) != null) {
            switch (next) {
                case Job job -> {
                    if (!job.cancelled) {
                        job.listener.onError(gone);
                    }
                }
                case PromptJob<?> p -> p.fail(gone);
            }
        }
        publish();
    }

    /** A finished sequence kept for its prefix: its KV holds exactly {@code tokens}. */
    private record Cached(Sequence sequence, int[] tokens) {}

    private static final class Job implements Handle, Queued {
        final GenerationRequest request;
        final GenerationListener listener;
        final long submittedNs;
        volatile boolean cancelled;

        Job(GenerationRequest request, GenerationListener listener, long submittedNs) {
            this.request = request;
            this.listener = Objects.requireNonNull(listener, "listener");
            this.submittedNs = submittedNs;
        }

        @Override
        public void cancel() {
            cancelled = true;
        }
    }

    /** A request in the running batch (or evicted, waiting to be recomputed). Engine thread only. */
    private static final class Active {
        final Job job;
        final TokenSampler sampler;
        final StreamingDecoder decoder;
        final StopMatcher stop;
        final long order;
        final StringBuilder text = new StringBuilder();
        final List<GeneratedToken> pendingTokens = new ArrayList<>(4);
        Sequence sequence;
        /** Prompt then generated tokens; {@code [0, fed)} are in the sequence, the rest are fed next. */
        int[] tokens;
        int size;
        int fed;
        int generated;
        long lastTokenNs;
        /** Sampled tokens left to take from the logits before asking for candidates again ({@link #CANDIDATE_PAUSE}). */
        int candidatePause;

        Active(Job job, Sequence sequence, TokenSampler sampler, StreamingDecoder decoder, long order) {
            this.job = job;
            this.sequence = sequence;
            this.sampler = sampler;
            this.decoder = decoder;
            this.stop = new StopMatcher(job.request.stop());
            this.order = order;
            int[] prompt = job.request.prompt();
            this.tokens = Arrays.copyOf(prompt, prompt.length + Math.min(job.request.maxTokens(), 64));
            this.size = prompt.length;
        }

        void append(int token) {
            if (size == tokens.length) {
                tokens = Arrays.copyOf(tokens, tokens.length * 2);
            }
            tokens[size++] = token;
        }
    }
}
