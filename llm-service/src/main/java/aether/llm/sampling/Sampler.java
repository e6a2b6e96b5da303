package aether.llm.sampling;

import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Picks tokens from logits as a {@link SamplerConfig} says, for one sequence: it keeps that sequence's penalty window
 * (the last accepted tokens) and its own random generator, seeded only from the config, so a run is reproducible
 * across restarts. Each {@link #sample} draws exactly one number from the generator unless the config is greedy (which
 * draws none).
 *
 * <p>Allocation-free per token: buffers come from a {@link SamplingWorkspace}, top-k and top-p use partial selection
 * and sort only the candidates they keep (top-p without top-k first tries the best 256). Not thread-safe: one sampler
 * per sequence, driven by one thread.
 */
public final class Sampler {

    /** Top-p without top-k sorts this many candidates first and the rest only if their mass is not enough. */
    static final int TOP_P_FIRST_PASS = 256;

    private final SamplerConfig config;
    private final SamplingWorkspace ws;
    private final int vocabSize;
    private final int[] biasIds;
    private final float[] biasValues;
    /** Ring of the last {@code penaltyLastN} accepted tokens, oldest at {@code historyStart}. */
    private final int[] history;
    private int historyStart;
    private int historySize;
    private SplittableRandom random;
    /** Candidates left by the last {@link #filter} call (in {@code ws.index}). */
    private int candidateCount;

    /** A sampler with a workspace of its own. */
    public Sampler(SamplerConfig config, int vocabSize) {
        this(config, new SamplingWorkspace(vocabSize));
    }

    /**
     * A sampler using a shared workspace (whose vocabulary size is the model's).
     *
     * @throws IllegalArgumentException when a logit-bias id is outside the vocabulary
     */
    public Sampler(SamplerConfig config, SamplingWorkspace workspace) {
        this.config = Objects.requireNonNull(config, "config");
        this.ws = Objects.requireNonNull(workspace, "workspace");
        this.vocabSize = workspace.vocabSize;
        this.biasIds = new int[config.logitBias().size()];
        this.biasValues = new float[biasIds.length];
        int b = 0;
        for (Map.Entry<Integer, Float> e : config.logitBias().entrySet()) {
            if (e.getKey() >= vocabSize) {
                throw new IllegalArgumentException("logit bias for token " + e.getKey()
                        + " (expected an id in 0.." + (vocabSize - 1) + ")");
            }
            biasIds[b] = e.getKey();
            biasValues[b++] = e.getValue();
        }
        this.history = new int[config.penaltyLastN()];
        this.random = new SplittableRandom(config.seed());
    }

    public SamplerConfig config() {
        return config;
    }

    public int vocabSize() {
        return vocabSize;
    }

    /**
     * Adds a token to the penalty window: every generated token, and the prompt's tokens too if they should count
     * (llama.cpp's CLI counts them).
     */
    public void accept(int token) {
        if (token < 0 || token >= vocabSize) {
            throw new IllegalArgumentException("token " + token + " (expected 0.." + (vocabSize - 1) + ")");
        }
        int capacity = history.length;
        if (capacity == 0) {
            return;
        }
        if (historySize < capacity) {
            history[(historyStart + historySize++) % capacity] = token;
        } else {
            history[historyStart] = token;
            historyStart = (historyStart + 1) % capacity;
        }
    }

    /** Forgets the penalty window and restarts the generator from the seed: the next draws repeat the first run's. */
    public void reset() {
        historyStart = 0;
        historySize = 0;
        random = new SplittableRandom(config.seed());
    }

    /**
     * Picks the next token from {@code logits[offset, offset + vocabSize)}, which are not modified. The token is not
     * accepted into the penalty window; call {@link #accept} when it is kept.
     *
     * @throws IllegalStateException when a logit is NaN or +Infinity, or every token is banned (all -Infinity)
     */
    public int sample(float[] logits, int offset) {
        int n = filter(logits, offset);
        if (config.isGreedy() || n == 1) {
            if (!config.isGreedy()) {
                random.nextDouble();   // one draw per sampled token, whatever the filters left
            }
            return ws.index[0];
        }
        double sum = probabilities(n);
        double target = random.nextDouble() * sum;
        double running = 0;
        int[] index = ws.index;
        double[] prob = ws.prob;
        for (int i = 0; i < n; i++) {
            running += prob[i];
            if (running > target) {
                return index[i];
            }
        }
        // rounding left the target at the very end: the last candidate with a non-zero probability
        for (int i = n - 1; i > 0; i--) {
            if (prob[i] > 0) {
                return index[i];
            }
        }
        return index[0];
    }

    /**
     * Runs bias, penalties and the filters, leaving the candidates in {@code ws.index[0..n)} and their adjusted logits
     * (before temperature) in {@code ws.work}; returns n. Greedy leaves exactly the argmax.
     */
    int filter(float[] logits, int offset) {
        Objects.checkFromIndexSize(offset, vocabSize, logits.length);
        float[] work = ws.work;
        for (int id = 0; id < vocabSize; id++) {
            float l = logits[offset + id];
            if (Float.isNaN(l) || l == Float.POSITIVE_INFINITY) {
                throw new IllegalStateException("logit of token " + id + " is " + l);
            }
            work[id] = l;
        }
        for (int b = 0; b < biasIds.length; b++) {
            work[biasIds[b]] += biasValues[b];
        }
        if (config.hasPenalties()) {
            applyPenalties(work);
        }
        int[] index = ws.index;
        if (config.isGreedy()) {
            int best = 0;
            for (int id = 1; id < vocabSize; id++) {
                if (work[id] > work[best]) {   // strict: ties keep the lower id, as llama.cpp's greedy sampler
                    best = id;
                }
            }
            checkNotAllBanned(work[best]);
            index[0] = best;
            return candidateCount = 1;
        }
        int n = vocabSize;
        for (int id = 0; id < n; id++) {
            index[id] = id;
        }
        boolean sorted = false;
        if (config.topK() > 0 && config.topK() < n) {
            CandidateOrder.selectFirst(index, n, config.topK(), work);
            n = config.topK();
            CandidateOrder.sort(index, 0, n, work);
            sorted = true;
        }
        if (config.topP() < 1f) {
            n = topP(n, sorted);
            sorted = true;
        }
        if (config.minP() > 0f) {
            n = minP(n, sorted);
        }
        checkNotAllBanned(sorted ? work[index[0]] : (float) maxLogit(n));
        return candidateCount = n;
    }

    /** The number of candidates the last {@link #filter} (or {@link #sample}) left. */
    int candidateCount() {
        return candidateCount;
    }

    /** llama.cpp's penalties: divide positive (multiply non-positive) logits, then subtract count·freq + presence. */
    private void applyPenalties(float[] work) {
        int[] counts = ws.counts;
        int capacity = history.length;
        for (int i = 0; i < historySize; i++) {
            counts[history[(historyStart + i) % capacity]]++;
        }
        float repeat = config.repeatPenalty();
        float frequency = config.frequencyPenalty();
        float presence = config.presencePenalty();
        for (int i = 0; i < historySize; i++) {
            int token = history[(historyStart + i) % capacity];
            int count = counts[token];
            if (count == 0) {
                continue;                 // a repeated token: already penalised at its first occurrence
            }
            float l = work[token];
            l = l <= 0 ? l * repeat : l / repeat;
            work[token] = l - ((float) count * frequency + presence);
            counts[token] = 0;            // also leaves the workspace's counts all zero for the next call
        }
    }

    /** Keeps the smallest sorted prefix whose softmax mass reaches top-p; returns its length (at least 1). */
    private int topP(int n, boolean sorted) {
        float[] work = ws.work;
        int[] index = ws.index;
        double p = config.topP();
        double max = sorted ? work[index[0]] : maxLogit(n);
        if (max == Double.NEGATIVE_INFINITY) {
            return n;                     // all banned; reported by the caller
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(work[index[i]] - max);
        }
        int sortedUpTo = n;
        if (!sorted) {
            sortedUpTo = Math.min(TOP_P_FIRST_PASS, n);
            CandidateOrder.selectFirst(index, n, sortedUpTo, work);
            CandidateOrder.sort(index, 0, sortedUpTo, work);
        }
        double target = p * sum;
        double cumulative = 0;
        for (int i = 0; i < n; i++) {
            if (i == sortedUpTo) {
                CandidateOrder.sort(index, sortedUpTo, n, work);   // the first pass was not enough: sort the rest
                sortedUpTo = n;
            }
            cumulative += Math.exp(work[index[i]] - max);
            if (cumulative >= target) {
                return i + 1;
            }
        }
        if (sortedUpTo < n) {
            CandidateOrder.sort(index, sortedUpTo, n, work);
        }
        return n;
    }

    /** Keeps candidates with {@code logit >= max + log(minP)} (llama.cpp computes the bound in float), in order. */
    private int minP(int n, boolean sorted) {
        float[] work = ws.work;
        int[] index = ws.index;
        float max = sorted ? work[index[0]] : (float) maxLogit(n);
        float bound = max + (float) Math.log(config.minP());
        int kept = 0;
        for (int i = 0; i < n; i++) {
            int id = index[i];
            if (work[id] >= bound) {
                index[kept++] = id;
            }
        }
        return Math.max(kept, 1);
    }

    /** Unnormalised softmax of {@code work/temperature} over the candidates into {@code ws.prob}; returns the sum. */
    private double probabilities(int n) {
        float[] work = ws.work;
        int[] index = ws.index;
        double[] prob = ws.prob;
        double inverseTemperature = 1.0 / config.temperature();
        double max = maxLogit(n);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double e = Math.exp((work[index[i]] - max) * inverseTemperature);
            prob[i] = e;
            sum += e;
        }
        return sum;
    }

    private double maxLogit(int n) {
        float[] work = ws.work;
        int[] index = ws.index;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, work[index[i]]);
        }
        return max;
    }

    private static void checkNotAllBanned(float max) {
        if (max == Float.NEGATIVE_INFINITY) {
            throw new IllegalStateException("every candidate token has logit -Infinity (all banned by the logit bias?)");
        }
    }
}
