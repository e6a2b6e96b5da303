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
 */
public record StepShape(int tokens, int outputs, int blocksPerSequence, int cacheBlocks, int blockSize,
        DType kvType) {

    public StepShape {
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
