package aether.llm.engine;

import aether.llm.arch.Architecture;
import aether.llm.arch.Numerics;
import aether.llm.arch.StepShape;
import aether.scheduler.exec.GraphExecutor;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;

/**
 * The simplest {@link InferenceModel}: every sequence has its own contiguous {@link KvCache}, and a step runs the
 * entries one after another through a {@link ForwardRunner}. It is exact (on the {@code ReferenceExecutor} it
 * reproduces llama.cpp's greedy outputs) but slow; the pool of KV blocks is only accounted, so admission control and
 * "cache full" behave as in a paged implementation.
 */
public final class ReferenceInferenceModel implements InferenceModel {

    /** Positions per accounted KV block. */
    public static final int BLOCK_POSITIONS = 16;

    private final ForwardRunner runner;
    private final int contextSize;
    private final int totalBlocks;
    private final Runnable onClose;
    private int usedBlocks;
    private boolean closed;

    /**
     * @param contextSize positions one sequence may hold (at most the model's context length)
     * @param totalBlocks KV blocks of {@link #BLOCK_POSITIONS} positions all sequences may hold together
     * @param onClose     run once by {@link #close()} (e.g. closing the model's file)
     */
    public ReferenceInferenceModel(Architecture architecture, GraphExecutor executor, Numerics numerics,
            int contextSize, int totalBlocks, Runnable onClose) {
        int modelContext = architecture.config().contextLength();
        if (contextSize < 1 || contextSize > modelContext) {
            throw new IllegalArgumentException("context size " + contextSize + " (expected 1.." + modelContext
                    + ", the model's context length)");
        }
        if (totalBlocks < 1) {
            throw new IllegalArgumentException("KV pool of " + totalBlocks + " blocks (expected 1+)");
        }
        this.runner = new ForwardRunner(architecture, executor, numerics);
        this.contextSize = contextSize;
        this.totalBlocks = totalBlocks;
        this.onClose = Objects.requireNonNull(onClose, "onClose");
    }

    @Override
    public aether.llm.model.ModelConfig config() {
        return runner.architecture().config();
    }

    @Override
    public int contextSize() {
        return contextSize;
    }

    @Override
    public Sequence newSequence() {
        checkOpen();
        return new RefSequence();
    }

    @Override
    public void step(List<BatchEntry> batch, Output output, float[] logits) {
        checkOpen();
        int vocab = config().vocabSize();
        int width = output.width(config());
        if (batch.isEmpty()) {
            throw new IllegalArgumentException("step of an empty batch");
        }
        long rowCount = output.rows(batch);
        if (logits.length < rowCount * width) {
            throw new IllegalArgumentException("output array of " + logits.length + " floats for " + rowCount
                    + " rows of " + width + " (" + output + "; expected at least " + rowCount * width + ")");
        }
        var seen = new IdentityHashMap<Sequence, Boolean>();
        int newBlocks = 0;
        for (BatchEntry e : batch) {
            if (!(e.sequence() instanceof RefSequence s) || s.owner() != this) {
                throw new IllegalArgumentException("sequence not created by this model");
            }
            if (s.isClosed()) {
                throw new IllegalArgumentException("step on a closed sequence");
            }
            if (seen.put(s, Boolean.TRUE) != null) {
                throw new IllegalArgumentException("a sequence appears twice in one step");
            }
            for (int i = e.from(); i < e.to(); i++) {
                if (e.tokens()[i] < 0 || e.tokens()[i] >= vocab) {
                    throw new IllegalArgumentException("token id " + e.tokens()[i] + " at index " + i
                            + " (expected 0.." + (vocab - 1) + ")");
                }
            }
            int after = s.length() + e.length();
            if (after > contextSize) {
                throw new KvCacheFullException("context full: a sequence of " + s.length() + " positions cannot take "
                        + e.length() + " more (context size " + contextSize + ")");
            }
            newBlocks += blocks(after) - blocks(s.length());
        }
        if (newBlocks > totalBlocks - usedBlocks) {
            throw new KvCacheFullException("KV pool full: " + newBlocks + " more blocks needed, "
                    + (totalBlocks - usedBlocks) + " of " + totalBlocks + " free");
        }
        int row = 0;
        for (int i = 0; i < batch.size(); i++) {
            BatchEntry e = batch.get(i);
            RefSequence s = (RefSequence) e.sequence();
            int before = s.length();
            if (output == Output.LAST_LOGITS) {
                int[] ids = java.util.Arrays.copyOfRange(e.tokens(), e.from(), e.to());
                float[] out = runner.forward(ids, s.cache());
                System.arraycopy(out, 0, logits, i * vocab, vocab);
            } else {
                // a row per token: the tokens one at a time (exact, and the per-shape graphs give only the last row)
                StepShape.Output kind = output == Output.ALL_HIDDEN ? StepShape.Output.HIDDEN
                        : StepShape.Output.LOGITS;
                for (int t = e.from(); t < e.to(); t++) {
                    float[] out = runner.forward(new int[] {e.tokens()[t]}, s.cache(), kind);
                    System.arraycopy(out, 0, logits, row++ * width, width);
                }
            }
            usedBlocks += blocks(s.length()) - blocks(before);
        }
    }

    @Override
    public KvStats kvStats() {
        return new KvStats(BLOCK_POSITIONS, totalBlocks, usedBlocks);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            onClose.run();
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("model is closed");
        }
    }

    private static int blocks(int positions) {
        return (positions + BLOCK_POSITIONS - 1) / BLOCK_POSITIONS;
    }

    private final class RefSequence implements Sequence {
        private KvCache cache;
        private boolean closedSeq;

        ReferenceInferenceModel owner() {
            return ReferenceInferenceModel.this;
        }

        KvCache cache() {
            if (cache == null) {
                cache = KvCache.create(config(), contextSize);
            }
            return cache;
        }

        @Override
        public int length() {
            return cache == null ? 0 : cache.length();
        }

        @Override
        public void truncate(int length) {
            if (closedSeq) {
                throw new IllegalStateException("sequence is closed");
            }
            int before = length();
            if (length < 0 || length > before) {
                throw new IllegalArgumentException("truncate a sequence of " + before + " positions to " + length
                        + " (expected 0.." + before + ")");
            }
            if (cache != null) {
                cache.truncate(length);
            }
            usedBlocks -= blocks(before) - blocks(length);
        }

        @Override
        public boolean isClosed() {
            return closedSeq;
        }

        @Override
        public void close() {
            if (!closedSeq) {
                closedSeq = true;
                usedBlocks -= blocks(length());
                cache = null;
            }
        }
    }
}
