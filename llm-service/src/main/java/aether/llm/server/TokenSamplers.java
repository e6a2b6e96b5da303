package aether.llm.server;

import aether.llm.sampling.CandidateRequest;
import aether.llm.sampling.Candidates;
import aether.llm.sampling.LogitAdjustments;
import aether.llm.sampling.Sampler;
import aether.llm.sampling.SamplerConfig;
import aether.llm.sampling.SamplingWorkspace;
import aether.llm.tokenizer.Tokenizer;
import java.util.HashMap;
import java.util.Map;

/** Request samplers over {@code aether.llm.sampling}: OpenAI's fields mapped onto a {@link SamplerConfig}. */
final class TokenSamplers {

    private TokenSamplers() {}

    /**
     * A factory for one engine: its samplers share one workspace, which is safe because the engine thread calls them
     * one at a time and each {@link Sampler#sample} call is self-contained. OpenAI's presence and frequency penalties
     * look at every generated token (the window is the whole context); there is no repeat penalty.
     */
    static TokenSampler.Factory standard(int contextSize) {
        return standard(contextSize, null);
    }

    /** As {@link #standard(int)}, and with {@code tokenizer} also {@code json_object} output. */
    static TokenSampler.Factory standard(int contextSize, Tokenizer tokenizer) {
        return new TokenSampler.Factory() {
            private byte[][] pieces;
            private VocabIndex index;
            private SamplingWorkspace workspace;
            private int workspaceVocab;

            @Override
            public TokenSampler create(SamplingParams p, int vocab, int budget) {
                if (workspace == null || workspaceVocab != vocab) {
                    workspace = new SamplingWorkspace(vocab);
                    workspaceVocab = vocab;
                }
                boolean penalties = p.presencePenalty() != 0 || p.frequencyPenalty() != 0;
                Map<Integer, Float> bias = new HashMap<>();
                p.logitBias().forEach((id, b) -> bias.put(id, b.floatValue()));
                var config = new SamplerConfig((float) p.temperature(), p.topK(), (float) p.topP(), (float) p.minP(),
                        1f, (float) p.presencePenalty(), (float) p.frequencyPenalty(), penalties ? contextSize : 0,
                        bias, p.seed());
                Sampler sampler = new Sampler(config, workspace);
                if (p.grammar() != null) {
                    if (tokenizer == null) {
                        throw new IllegalStateException("constrained output needs the tokenizer");
                    }
                    if (index == null) {
                        index = new VocabIndex(tokenizer);
                    }
                    return new GrammarSampler(sampler, tokenizer, index, p.grammar(), budget);
                }
                TokenSampler plain = new Plain(sampler);
                if (!p.jsonObject()) {
                    return plain;
                }
                if (tokenizer == null) {
                    throw new IllegalStateException("json_object output needs the tokenizer");
                }
                if (pieces == null) {
                    pieces = JsonObjectSampler.pieces(tokenizer);
                }
                return new JsonObjectSampler(plain, tokenizer, pieces, budget);
            }
        };
    }

    /**
     * Whether the engine may take {@code request}'s next token from the model's argmax instead of its logits: its
     * sampler is argmax-only (greedy, no logit bias, no penalties, no grammar or JSON constraint: see {@link Plain})
     * and no log-probabilities are asked for (they are computed from the logits).
     */
    static boolean argmaxSuffices(GenerationRequest request, TokenSampler sampler) {
        return request.topLogprobs() < 0 && sampler.argmaxOnly();
    }

    /**
     * A sampler with no constraint: {@link Sampler#sample}, then {@link Sampler#accept}. Argmax-only exactly when the
     * sampler's own greedy path is a plain argmax ({@link Sampler#isPlainGreedy}: temperature 0, no bias, no
     * penalties), which draws no random number, so taking the token from the model leaves the sampler as sampling
     * would have. Otherwise it samples from candidates where they decide the token ({@link Sampler#candidatesDecide}).
     */
    static final class Plain implements TokenSampler, CandidateRequest {
        private final Sampler sampler;
        private final LogitAdjustments adjustments = new LogitAdjustments();
        /** The log-probability count of the current candidate request (-1: none). */
        private int top = -1;
        /** The current request's draw over the whole row ({@link Sampler#fullDrawUniform}; NaN: none). */
        private double drawUniform = Double.NaN;

        Plain(Sampler sampler) {
            this.sampler = sampler;
        }

        Sampler sampler() {
            return sampler;
        }

        @Override
        public int sample(float[] logits, int offset, int vocab) {
            int token = sampler.sample(logits, offset);
            sampler.accept(token);
            return token;
        }

        @Override
        public boolean argmaxOnly() {
            return sampler.isPlainGreedy();
        }

        @Override
        public int acceptArgmax(int token) {
            if (!argmaxOnly()) {
                throw new IllegalStateException("an argmax token for a sampler that needs the logits ("
                        + sampler.config() + ")");
            }
            sampler.accept(token);
            return token;
        }

        @Override
        public CandidateRequest candidateRequest(int topLogprobs) {
            if (!sampler.candidatesMayDecide() || topLogprobs > Candidates.K) {
                return null;
            }
            sampler.adjustments(adjustments);
            if (topLogprobs >= 0 && adjustments.size() > 0) {
                return null;   // log-probabilities of the raw logits: the candidates are of the adjusted ones
            }
            top = topLogprobs;
            drawUniform = sampler.fullDrawUniform();
            return this;
        }

        @Override
        public LogitAdjustments adjustments() {
            return adjustments;
        }

        @Override
        public boolean decides(Candidates candidates, int row) {
            return sampler.candidatesDecide(candidates, row)
                    && (top < 0 || Math.min(top, sampler.vocabSize()) <= candidates.width(row));
        }

        @Override
        public boolean needsExpSum() {
            return top >= 0 || sampler.candidatesNeedExpSum();
        }

        @Override
        public double drawUniform() {
            return drawUniform;
        }

        @Override
        public double drawInverseTemperature() {
            return sampler.inverseTemperature();
        }

        @Override
        public int sampleCandidates(Candidates candidates, int row) {
            int token = sampler.sampleCandidates(candidates, row);
            sampler.accept(token);
            return token;
        }
    }
}
