package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.arch.Architecture;
import aether.llm.arch.Numerics;
import aether.llm.gguf.GgufFile;
import aether.llm.synth.SynthSpec;
import aether.llm.synth.SyntheticModel;
import aether.runtime.ir.DType;
import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Continuous batching on a Q4_0 and a Q8_0 model: 8 sequences decoded together in one step per token get exactly the
 * logits (bit for bit) and so the greedy tokens each gets decoded alone. The Q4_0 and Q8_0 matmuls of a step with fewer
 * than {@code Matmul.PLANAR_GEMM_MIN_TOKENS} rows run the multi-row int8 kernels ({@code Q4_0BatchKernels},
 * {@code Q8_0BatchKernels}), whose per-row result does not depend on the other rows; this guards that property end to
 * end (attention, norms and sampling included).
 */
class BatchedDecodeTest {
    private static final int SEQUENCES = 8;
    private static final int DECODE = 12;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = GgmlType.class, names = {"Q4_0", "Q8_0"})
    @Timeout(180)
    void shouldGiveEachOfEightBatchedSequencesExactlyItsGreedyOutputAlone(GgmlType type) throws IOException {
        Path vocabFile = SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
        Path file = dir.resolve(type.name().toLowerCase(java.util.Locale.ROOT) + ".gguf");
        SyntheticModel.of(new SynthSpec("batch-test", 2, 256, 512, 4, 2, 512, 10000f, 1e-5f, type, 17), vocabFile)
                .write(file, 2, done -> {});
        try (GgufFile gguf = GgufFile.open(file)) {
            Architecture arch = Architecture.load(gguf);
            int vocab = arch.config().vocabSize();
            Random rnd = new Random(5);
            int[][] prompts = new int[SEQUENCES][];
            for (int i = 0; i < SEQUENCES; i++) {
                prompts[i] = new int[1 + i];                 // 1..8 tokens: every sequence at its own position
                for (int j = 0; j < prompts[i].length; j++) {
                    prompts[i][j] = 1 + rnd.nextInt(vocab - 1);
                }
            }
            try (var m = PagedInferenceModel.open(arch, Numerics.FLOAT32, 256, 64, 128, DType.F16, 2, () -> {})) {
                float[][][] alone = new float[SEQUENCES][DECODE + 1][vocab];
                int[][] aloneTokens = new int[SEQUENCES][DECODE];
                for (int i = 0; i < SEQUENCES; i++) {
                    try (Sequence s = m.newSequence()) {
                        m.step(List.of(InferenceModel.BatchEntry.of(s, prompts[i])), alone[i][0]);
                        for (int k = 0; k < DECODE; k++) {
                            aloneTokens[i][k] = PagedInferenceModelTest.argmax(alone[i][k]);
                            m.step(List.of(InferenceModel.BatchEntry.of(s, aloneTokens[i][k])), alone[i][k + 1]);
                        }
                    }
                }
                Sequence[] seqs = new Sequence[SEQUENCES];
                float[] logits = new float[SEQUENCES * vocab];
                float[] one = new float[vocab];
                for (int i = 0; i < SEQUENCES; i++) {   // prefill one by one, as the server's chunked prefill may
                    seqs[i] = m.newSequence();
                    m.step(List.of(InferenceModel.BatchEntry.of(seqs[i], prompts[i])), one);
                    System.arraycopy(one, 0, logits, i * vocab, vocab);
                }
                int[][] batchTokens = new int[SEQUENCES][DECODE];
                for (int k = 0; k <= DECODE; k++) {
                    List<InferenceModel.BatchEntry> step = new ArrayList<>();
                    for (int i = 0; i < SEQUENCES; i++) {
                        float[] mine = Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab);
                        for (int v = 0; v < vocab; v++) {
                            if (Float.floatToRawIntBits(mine[v]) != Float.floatToRawIntBits(alone[i][k][v])) {
                                throw new AssertionError("sequence %d step %d logit %d: batched %s, alone %s"
                                        .formatted(i, k, v, mine[v], alone[i][k][v]));
                            }
                        }
                        if (k < DECODE) {
                            batchTokens[i][k] = PagedInferenceModelTest.argmax(mine);
                            step.add(InferenceModel.BatchEntry.of(seqs[i], batchTokens[i][k]));
                        }
                    }
                    if (k < DECODE) {
                        m.step(step, logits);   // one decode step: 8 rows through every matmul
                    }
                }
                assertThat(batchTokens).isEqualTo(aloneTokens);
                for (Sequence s : seqs) {
                    s.close();
                }
                assertThat(m.kvStats().usedBlocks()).isZero();
            }
        }
    }
}
