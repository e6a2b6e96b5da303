package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.synth.SynthSpec;
import aether.llm.synth.SyntheticModel;
import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The decode loop allocates nothing once warm for quantized weights too (PagedInferenceModelTest covers f32 weights):
 * a small synthetic llama model per weight type, opened through {@link LoadedModel} as the product does (Q4_0
 * repacked to its planar layout, Q8 activations for Q8_0 and K-quants), one compute thread so every kernel runs on
 * the measured thread. Every step looks up a different embedding row (GetRows over quantized blocks, which used to
 * box Vector API temporaries: ~15 KB per step here, ~119 KB on a 1B Q4_0 model) and runs every quantized matmul.
 *
 * <p>"Warm" is a few hundred steps, as in a real reply: the matmul kernels are hot by then, while a step's lukewarm
 * code (one embedding row per token) may still run interpreted or C1-compiled, so it must not rely on C2 to stay
 * allocation-free. After the warm-up the best of a few windows counts, so that a kernel still waiting in a loaded
 * machine's C2 queue does not fail the test.
 */
@Timeout(240)
class QuantizedDecodeAllocationTest {

    private static final int WARMUP_STEPS = 300;
    private static final int WINDOW_STEPS = 40;
    private static final int WINDOWS = 6;
    private static final long MAX_BYTES_PER_STEP = 256;

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_0", "Q8_0", "Q4_K", "Q6_K", "F16"})
    void shouldNotAllocateInTheDecodeLoop(GgmlType type) throws IOException {
        Path vocab = SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
        Path file = dir.resolve("m-" + type + ".gguf");
        // ffn 4352 (136 blocks): the down projection's rows are long enough for the 512-bit Q4_0 kernel to read the
        // activations as bytes (Q4_0BatchKernels.BYTE_ACTIVATIONS_MIN_BLOCKS), a path of its own to keep allocation-free
        SyntheticModel.of(new SynthSpec("synth-alloc", 2, 256, 4352, 4, 2, 512, 10000f, 1e-5f, type, 5), vocab)
                .write(file, 2, done -> {});
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(256).withMaxSequences(1).withThreads(1);
        try (LoadedModel loaded = LoadedModel.open(file, options)) {
            InferenceModel m = loaded.model();
            int vocabSize = m.config().vocabSize();
            float[] logits = new float[vocabSize];
            try (Sequence s = m.newSequence()) {
                int[] token = {1};
                List<InferenceModel.BatchEntry> batch = List.of(InferenceModel.BatchEntry.of(s, token));
                m.step(List.of(InferenceModel.BatchEntry.of(s, new int[] {1, 450, 4996, 17354, 1701})), logits);
                int step = 0;
                for (; step < WARMUP_STEPS; step++) {
                    token[0] = 1 + step * 7919 % (vocabSize - 1);   // a different embedding row every step
                    m.step(batch, logits);
                    s.truncate(5);
                }
                long best = Long.MAX_VALUE;
                for (int w = 0; w < WINDOWS && best >= MAX_BYTES_PER_STEP; w++) {
                    long before = threads.getCurrentThreadAllocatedBytes();
                    for (int i = 0; i < WINDOW_STEPS; i++, step++) {
                        token[0] = 1 + step * 7919 % (vocabSize - 1);
                        m.step(batch, logits);
                        s.truncate(5);
                    }
                    best = Math.min(best, (threads.getCurrentThreadAllocatedBytes() - before) / WINDOW_STEPS);
                }
                assertThat(best).as("bytes allocated per decode step, " + type + " weights (best of %d windows)",
                        WINDOWS).isLessThan(MAX_BYTES_PER_STEP);
            }
        }
    }
}
