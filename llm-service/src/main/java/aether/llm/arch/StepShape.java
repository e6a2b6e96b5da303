package aether.llm.arch;

import aether.runtime.ir.DType;
import aether.runtime.tensor.GgmlType;

/**
 * The shape of a {@link StepGraph}: everything its graph depends on, and nothing that changes from step to step.
 *
 * @param tokens            tokens in the step, over all its sequences
 * @param outputs           rows of logits computed (one per sequence in the step: its last token)
 * @param blocksPerSequence block-table width: blocks one sequence may hold (context size / block size, rounded up)
 * @param cacheBlocks       blocks in the KV pool
 * @param blockSize         positions per block
 * @param kvType            KV cache storage type: f32, f16 or q8_0
 * @param output            what the graph computes for its output rows: logits, or the final hidden states
 */
public record StepShape(int tokens, int outputs, int blocksPerSequence, int cacheBlocks, int blockSize,
        DType kvType, Output output) {

    /** The graph's output per output row. */
    public enum Output {
        /** {@code f32[outputs, vocab]}: the LM head applied to the normed hidden states. */
        LOGITS,
        /**
         * {@code f32[outputs, n_embd]}: the final hidden states after the output norm, before the LM head (an
         * embedding step: the head, the largest matmul of a small model, is not built at all).
         */
        HIDDEN
    }

    /** A logits step. */
    public StepShape(int tokens, int outputs, int blocksPerSequence, int cacheBlocks, int blockSize, DType kvType) {
        this(tokens, outputs, blocksPerSequence, cacheBlocks, blockSize, kvType, Output.LOGITS);
    }

    public StepShape {
        java.util.Objects.requireNonNull(output, "output");
        if (tokens < 1 || outputs < 1 || outputs > tokens || blocksPerSequence < 1 || cacheBlocks < 1
                || blockSize < 1) {
            throw new IllegalArgumentException("step shape tokens=" + tokens + ", outputs=" + outputs + ", blocks per"
                    + " sequence=" + blocksPerSequence + ", cache blocks=" + cacheBlocks + ", block size=" + blockSize
                    + " (expected all >= 1 and outputs <= tokens)");
        }
        if (!(kvType.equals(DType.F32) || kvType.equals(DType.F16) || kvType.ggml() == GgmlType.Q8_0)) {
            throw new IllegalArgumentException("KV cache type " + kvType + " (expected f32, f16 or q8_0)");
        }
        if ((long) cacheBlocks * blockSize > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("KV pool of " + cacheBlocks + " blocks of " + blockSize
                    + " positions overflows int slots");
        }
    }

    /** Cache rows in the pool. */
    public int cacheSlots() {
        return cacheBlocks * blockSize;
    }
}
