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
 * and sort only the candidates they keep (top-p without top-k buckets by logit first). Not thread-safe: one sampler
 * per sequence, driven by one thread.
 *
 * <p>The same choice can be made from {@link Candidates} (the first 64 tokens of the row after this sampler's {@link
 * #adjustments}, as a GPU computes them) whenever they contain everything the filters keep: {@link #candidatesDecide}
 * says when, {@link #sampleCandidates} then gives the same token with the same random draw. The whole row stays
 * necessary for top-k above 64, top-p whose cut lies past the candidates and min-p alone keeping more than them. A
 * temperature with no top-k, top-p or min-p ({@link #isFullDraw}: the draw runs over the whole vocabulary in id order)
 * is decided by the candidates' draw: the sampler tells its next random number before the step ({@link
 * #fullDrawUniform}), the device draws with it, and the token is taken when rounding cannot change it.
 */
public final class Sampler {

    /** Top-p without top-k buckets the logits of [max - 32, max] into this many slices before sorting. */
    static final int TOP_P_BUCKETS = 256;
    private static final double TOP_P_RANGE = 32;

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
    /** The generator's next number when already taken from it by {@link #fullDrawUniform} (NaN: none taken). */
    private double peeked = Double.NaN;
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
     * Whether {@link #sample} is exactly {@link Argmax#first} of the logits: greedy, with no logit bias and no
     * penalties. Such a sampler draws no random number and reads no state but the logits, so a caller may take the
     * token from an argmax computed elsewhere (on the device), skip the logits, and {@link #accept} it as usual.
     */
    public boolean isPlainGreedy() {
        return config.isGreedy() && biasIds.length == 0 && !config.hasPenalties();
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
        peeked = Double.NaN;
    }

    /** The generator's next number: the one {@link #fullDrawUniform} told, if it did; every draw goes through here. */
    private double nextUniform() {
        double u = peeked;
        if (Double.isNaN(u)) {
            return random.nextDouble();
        }
        peeked = Double.NaN;
        return u;
    }

    /**
     * Whether {@link #sample}'s draw runs over the whole vocabulary in id order: a temperature above 0 and no top-k
     * (or one of at least the vocabulary), top-p or min-p.
     */
    public boolean isFullDraw() {
        int k = config.topK();
        return !config.isGreedy() && !(k > 0 && k < vocabSize) && config.topP() >= 1f && config.minP() <= 0f;
    }

    /**
     * For a {@link #isFullDraw full draw}: the uniform number in [0, 1) the next {@link #sample} (or {@link
     * #sampleCandidates}) will draw, so that a device can draw with it; NaN otherwise. The generator's sequence is
     * unchanged: the number is taken from it now and handed to that next draw, and asking again gives the same one.
     */
    public double fullDrawUniform() {
        if (!isFullDraw()) {
            return Double.NaN;
        }
        if (Double.isNaN(peeked)) {
            peeked = random.nextDouble();
        }
        return peeked;
    }

    /** {@code 1 / temperature} in double, as the draw's terms use it (infinite when greedy). */
    public double inverseTemperature() {
        return 1.0 / config.temperature();
    }

    /**
     * Picks the next token from {@code logits[offset, offset + vocabSize)}, which are not modified. The token is not
     * accepted into the penalty window; call {@link #accept} when it is kept.
     *
     * @throws IllegalStateException when a logit is NaN or +Infinity, or every token is banned (all -Infinity)
     */
    public int sample(float[] logits, int offset) {
        return draw(filter(logits, offset));
    }

    /** The draw of {@link #sample} among the {@code n} candidates a filter left in {@code ws.index}/{@code ws.work}. */
    private int draw(int n) {
        if (config.isGreedy() || n == 1) {
            if (!config.isGreedy()) {
                nextUniform();   // one draw per sampled token, whatever the filters left
            }
            return ws.index[0];
        }
        double sum = probabilities(n);
        double target = nextUniform() * sum;
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
        int[] index = ws.index;
        if (isPlainGreedy()) {
            index[0] = argmax(logits, offset);   // plain greedy: one pass, nothing copied
            return candidateCount = 1;
        }
        float[] work = ws.work;
        boolean bad = false;
        for (int id = 0; id < vocabSize; id++) {
            float l = logits[offset + id];
            bad |= l != l | l == Float.POSITIVE_INFINITY;   // branch-free here; the culprit is found below
            work[id] = l;
        }
        if (bad) {
            for (int id = 0; id < vocabSize; id++) {
                float l = work[id];
                if (Float.isNaN(l) || l == Float.POSITIVE_INFINITY) {
                    throw new IllegalStateException("logit of token " + id + " is " + l);
                }
            }
        }
        for (int b = 0; b < biasIds.length; b++) {
            work[biasIds[b]] += biasValues[b];
        }
        if (config.hasPenalties()) {
            applyPenalties(work);
        }
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

    // ---- sampling from candidates (Candidates: the first K tokens of the adjusted row, computed on a device) ----------

    /**
     * Relative margin between the candidates' top-p target ({@code p * expSum}, the sum from the device in another order
     * and with the device's {@code exp}) and the host's: both differ by far less (each term within 2 ulp, the sums of up
     * to 256k terms within ~3e-11 relative). A cumulative mass within this margin of the target is left to the host path.
     */
    static final double TOP_P_MARGIN = 1e-9;

    /**
     * Writes the adjustments {@link #sample} would make to the next step's logits (bias, then penalties over the current
     * window) into {@code out}.
     */
    public void adjustments(LogitAdjustments out) {
        out.clear(config.repeatPenalty());
        boolean penalties = config.hasPenalties();
        int[] counts = ws.counts;
        int capacity = history.length;
        if (penalties) {
            for (int i = 0; i < historySize; i++) {
                counts[history[(historyStart + i) % capacity]]++;
            }
        }
        float frequency = config.frequencyPenalty();
        float presence = config.presencePenalty();
        for (int b = 0; b < biasIds.length; b++) {
            int id = biasIds[b];
            int count = penalties ? counts[id] : 0;
            if (count > 0) {
                out.add(id, LogitAdjustments.BIAS | LogitAdjustments.PENALTY, biasValues[b],
                        (float) count * frequency + presence);
                counts[id] = 0;
            } else {
                out.add(id, LogitAdjustments.BIAS, biasValues[b], 0f);
            }
        }
        if (penalties) {
            for (int i = 0; i < historySize; i++) {
                int token = history[(historyStart + i) % capacity];
                int count = counts[token];
                if (count > 0) {
                    out.add(token, LogitAdjustments.PENALTY, 0f, (float) count * frequency + presence);
                    counts[token] = 0;   // leaves the workspace's counts all zero again
                }
            }
        }
    }

    /**
     * Whether {@link Candidates} can ever decide this sampler's tokens: greedy, top-k up to {@link Candidates#K}, top-p
     * or min-p, a {@link #isFullDraw full draw} (by the candidates' draw; each may still leave a particular row to the
     * logits, see {@link #candidatesDecide}), or a vocabulary of at most K tokens. False for top-k above K: the kept
     * tokens go past the candidates.
     */
    public boolean candidatesMayDecide() {
        if (config.isGreedy() || vocabSize <= Candidates.K) {
            return true;
        }
        int k = config.topK();
        return !(k > 0 && k < vocabSize) || k <= Candidates.K;
    }

    /** Whether {@link #candidatesDecide} reads the candidates' {@link Candidates#expSum}: top-p without top-k. */
    public boolean candidatesNeedExpSum() {
        int k = config.topK();
        return !config.isGreedy() && config.topP() < 1f && !(k > 0 && k < vocabSize);
    }

    /**
     * Whether row {@code row} of {@code candidates} (computed with this sampler's {@link #adjustments}) gives exactly the
     * token {@link #sample} would give from the whole row. Pure: no random number is drawn, the window is unchanged.
     * False (the caller then samples from the logits) when the row is flagged or entirely banned (the host path
     * reports those), for top-k above K, when top-p without top-k needs more mass than the candidates hold or their
     * cumulative mass is within {@link #TOP_P_MARGIN} of the cut, when min-p without top-k or top-p keeps tokens
     * beyond the candidates, and for a draw over the whole vocabulary that the row's draw does not decide (not asked,
     * undecided, or computed with another uniform than this sampler's next, see {@link #fullDrawDecides}) unless every
     * token is a candidate.
     */
    public boolean candidatesDecide(Candidates candidates, int row) {
        return fullDrawDecides(candidates, row) || filterCandidates(candidates, row) > 0;
    }

    /**
     * Whether row {@code row}'s draw gives this sampler's next token: a full draw, the row's draw decided and computed
     * with exactly this sampler's next uniform ({@link #fullDrawUniform}, which it fixes if not yet told) and inverse
     * temperature, and the token in the vocabulary.
     */
    private boolean fullDrawDecides(Candidates c, int row) {
        if (!isFullDraw() || c.flagged(row) || !c.drawDecided(row)) {
            return false;
        }
        int id = c.drawnId(row);
        return id >= 0 && id < vocabSize && c.drawUniform(row) == fullDrawUniform()
                && c.drawInverseTemperature(row) == inverseTemperature();
    }

    /**
     * {@link #sample} from row {@code row} of {@code candidates}: the same token and the same random draw as from the
     * whole logits row. The token is not accepted into the window.
     *
     * @throws IllegalStateException when {@link #candidatesDecide} is false for this row
     */
    public int sampleCandidates(Candidates candidates, int row) {
        if (fullDrawDecides(candidates, row)) {
            nextUniform();   // the draw the device made with it
            candidateCount = vocabSize;
            return candidates.drawnId(row);
        }
        int n = filterCandidates(candidates, row);
        if (n <= 0) {
            throw new IllegalStateException("the candidates of row " + row
                    + " do not decide this token (candidatesDecide is false): sample from the logits");
        }
        return draw(n);
    }

    /**
     * {@link #filter} on the candidates: leaves the same candidates as {@link #filter} would in {@code ws.index[0..n)}
     * (with their values in {@code ws.work}) and returns n, or returns 0 when the candidates cannot tell.
     */
    private int filterCandidates(Candidates c, int row) {
        if (c.flagged(row)) {
            return 0;
        }
        int width = c.width(row);
        float top = c.value(row, 0);
        if (top == Float.NEGATIVE_INFINITY) {
            return 0;   // every token banned: the host path throws its error
        }
        int[] index = ws.index;
        float[] work = ws.work;
        for (int i = 0; i < width; i++) {
            int id = c.id(row, i);
            index[i] = id;
            work[id] = c.value(row, i);
        }
        if (config.isGreedy()) {
            return candidateCount = 1;   // the first largest, lower id on ties: filter's strict > scan
        }
        boolean all = width == vocabSize;   // every token is a candidate
        int n = vocabSize;
        boolean sorted = false;
        int k = config.topK();
        if (k > 0 && k < n) {
            if (k > width) {
                return 0;
            }
            n = k;
            sorted = true;
        }
        if (config.topP() < 1f) {
            n = sorted ? topP(n, true) : topPFromCandidates(c, row, width);
            if (n == 0) {
                return 0;
            }
            sorted = true;
        }
        if (config.minP() > 0f) {
            if (sorted) {
                n = minP(n, true);
            } else {
                // min-p over the whole vocabulary keeps the tokens >= bound in id order: all of them are candidates
                // when the last candidate is below the bound
                float bound = top + (float) Math.log(config.minP());
                if (!all && !(c.value(row, width - 1) < bound)) {
                    return 0;
                }
                int kept = 0;
                for (int i = 0; i < width; i++) {
                    if (c.value(row, i) >= bound) {
                        index[kept++] = c.id(row, i);
                    }
                }
                java.util.Arrays.sort(index, 0, kept);
                n = kept;   // at least the top candidate
            }
        } else if (!sorted) {
            if (!all) {
                return 0;   // the draw over the whole vocabulary: stays on the logits
            }
            for (int id = 0; id < n; id++) {
                index[id] = id;   // filter's order: every token, by id
            }
        }
        return candidateCount = n;
    }

    /**
     * Top-p without top-k from the sorted candidates: {@link #topP}'s cut (the first prefix whose mass reaches {@code p}
     * times the whole row's) with the whole row's mass from the candidates' {@code expSum}; 0 when the cut lies past
     * the candidates or the cumulative mass there is too close to the target to be sure of the host's cut.
     */
    private int topPFromCandidates(Candidates c, int row, int width) {
        float[] work = ws.work;
        int[] index = ws.index;
        double max = work[index[0]];
        double target = config.topP() * c.expSum(row);
        double margin = target * TOP_P_MARGIN;
        double cumulative = 0;
        for (int i = 0; i < width; i++) {
            cumulative += Math.exp(work[index[i]] - max);   // topP's terms in topP's order: the same doubles
            if (cumulative >= target - margin) {
                return cumulative >= target + margin ? i + 1 : 0;
            }
        }
        return 0;
    }

    /** The first largest logit (strict >, as llama.cpp's greedy sampler); rejects NaN and +Infinity. */
    private int argmax(float[] logits, int offset) {
        return Argmax.first(logits, offset, vocabSize);
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

    /**
     * Keeps the smallest sorted prefix whose softmax mass reaches top-p; returns its length (at least 1). When the
     * candidates are not sorted yet (no top-k before), it first buckets them by logit, as llama.cpp's bucket sort
     * does, and sums the mass per bucket: the tokens of the buckets above the one where the mass reaches p are kept
     * for sure, so only those and that bucket's tokens are gathered and sorted to find the exact cut.
     */
    private int topP(int n, boolean sorted) {
        float[] work = ws.work;
        int[] index = ws.index;
        double p = config.topP();
        double max = sorted ? work[index[0]] : maxLogit(n);
        if (max == Double.NEGATIVE_INFINITY) {
            return n;                     // all banned; reported by the caller
        }
        double sum = 0;
        int sortedUpTo = n;
        if (sorted) {
            for (int i = 0; i < n; i++) {
                sum += Math.exp(work[index[i]] - max);
            }
        } else {
            double[] mass = ws.bucketMass;
            java.util.Arrays.fill(mass, 0);
            for (int i = 0; i < n; i++) {
                float l = work[index[i]];
                double e = Math.exp(l - max);
                sum += e;
                mass[bucket(l, max)] += e;
            }
            double target = p * sum;
            double above = 0;
            int cut = TOP_P_BUCKETS - 1;
            while (cut > 0 && above + mass[cut] < target) {
                above += mass[cut--];
            }
            int gathered = 0;             // the tokens of buckets >= cut move to the front (a permutation)
            for (int i = 0; i < n; i++) {
                int id = index[i];
                if (bucket(work[id], max) >= cut) {
                    index[i] = index[gathered];
                    index[gathered++] = id;
                }
            }
            CandidateOrder.sort(index, 0, gathered, work);
            sortedUpTo = gathered;
        }
        double target = p * sum;
        double cumulative = 0;
        for (int i = 0; i < n; i++) {
            if (i == sortedUpTo) {
                // rounding left the mass just short: sort the rest too
                CandidateOrder.sort(index, sortedUpTo, n, work);
                sortedUpTo = n;
            }
            cumulative += Math.exp(work[index[i]] - max);
            if (cumulative >= target) {
                return i + 1;
            }
        }
        return n;
    }

    /** Bucket of a logit: {@link #TOP_P_BUCKETS} equal slices of [max - 32, max]; everything lower in bucket 0. */
    private static int bucket(float logit, double max) {
        double x = (logit - max + TOP_P_RANGE) * (TOP_P_BUCKETS / TOP_P_RANGE);
        return x <= 0 ? 0 : Math.min(TOP_P_BUCKETS - 1, (int) x);
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
            throw new IllegalStateException(Argmax.ALL_BANNED);
        }
    }
}
