package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cuda.GpuFixture;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.llm.sampling.Argmax;
import aether.llm.synth.SynthSpec;
import aether.llm.synth.SyntheticModel;
import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The CUDA engine's argmax-only step ({@link CudaInferenceModel#step(List, float[], boolean[], int[])}: argmax_rows on
 * the device, ints downloaded) against its normal step. Two sets of 40 sequences of one GPU model are fed the same
 * tokens in lockstep, set A by the normal step, set B by the argmax step with random logitsWanted: prompts of 1-9
 * tokens (entry by entry, one-token prompts as rows beside them), then greedy decode steps of all 40 (rows: passes of
 * up to 64) and of a lone sequence (the single-token graph); the same for a model split between CPU and GPU (the GPU
 * part's {@code stepFromHidden}). A row's result does not depend on the other rows of its
 * pass (CudaBatchedDecodeTest), so B's argmax must be exactly the host argmax of A's logits and B's wanted rows
 * bitwise A's.
 */
@Tag("gpu")
@Timeout(300)
class CudaArgmaxStepTest {

    private static final int SEQUENCES = 40;

    @TempDir
    Path dir;

    /** gpuLayers -1: the whole model on the GPU; 1: a split model (CPU layer 0, GPU layer 1 and the head). */
    @ParameterizedTest
    @ValueSource(ints = {-1, 1})
    void argmaxOutEqualsTheHostArgmaxOfTheNormalStepsLogits(int gpuLayers) throws IOException {
        GpuFixture.assumeGpu();
        long seed = System.nanoTime();
        System.out.println("seed " + seed);
        Path vocabFile = SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
        SynthSpec spec = new SynthSpec("synth-gpu-argmax", 2, 256, 512, 4, 2, 512, 10000f, 1e-5f, GgmlType.Q4_0, seed);
        Path file = dir.resolve("m.gguf");
        SyntheticModel.of(spec, vocabFile).write(file, 4, done -> {});
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(64).withMaxSequences(2 * SEQUENCES + 2);
        try (LoadedModel gpu = gpuLayers < 0 ? CudaModels.open(file, options)
                : CudaModels.open(file, options, new GpuLayers(gpuLayers))) {
            InferenceModel g = gpu.model();
            assertThat(g).isInstanceOf(gpuLayers < 0 ? CudaInferenceModel.class : HybridInferenceModel.class);
            int vocab = g.config().vocabSize();
            SplittableRandom r = new SplittableRandom(seed);
            List<Sequence> a = new ArrayList<>(), b = new ArrayList<>();
            int[][] next = new int[SEQUENCES][];
            for (int i = 0; i < SEQUENCES; i++) {
                a.add(g.newSequence());
                b.add(g.newSequence());
                next[i] = r.ints(i % 7 == 3 ? 1 : r.nextInt(2, 10), 0, vocab).toArray();
            }
            float[] la = new float[SEQUENCES * vocab], lb = new float[SEQUENCES * vocab];
            boolean[] wanted = new boolean[SEQUENCES];
            int[] argmax = new int[SEQUENCES];
            int argmaxRows = 0;
            for (int step = 0; step < 6; step++) {
                List<BatchEntry> ba = new ArrayList<>(), bb = new ArrayList<>();
                for (int i = 0; i < SEQUENCES; i++) {
                    ba.add(BatchEntry.of(a.get(i), next[i]));
                    bb.add(BatchEntry.of(b.get(i), next[i]));
                    wanted[i] = r.nextInt(4) == 0;
                }
                Arrays.fill(argmax, -7);
                Arrays.fill(lb, Float.NaN);
                g.step(ba, la);
                g.step(bb, lb, wanted, argmax);
                for (int i = 0; i < SEQUENCES; i++) {
                    int expected = Argmax.first(la, i * vocab, vocab);
                    if (wanted[i]) {
                        assertThat(Arrays.copyOfRange(lb, i * vocab, (i + 1) * vocab)).as("step %d entry %d", step, i)
                                .containsExactly(Arrays.copyOfRange(la, i * vocab, (i + 1) * vocab));
                    } else {
                        assertThat(argmax[i]).as("step %d entry %d", step, i).isEqualTo(expected);
                        argmaxRows++;
                    }
                    next[i] = new int[] {expected};
                }
            }
            assertThat(argmaxRows).isGreaterThan(SEQUENCES * 3);
            // a lone decode entry: the single-token graph, then argmax_rows over its logits
            float[] one = new float[vocab];
            int[] best = {-7};
            for (int step = 0; step < 4; step++) {
                g.step(List.of(BatchEntry.of(a.getFirst(), next[0])), one);
                g.step(List.of(BatchEntry.of(b.getFirst(), next[0])), new float[vocab], new boolean[] {false}, best);
                assertThat(best[0]).as("lone step %d", step).isEqualTo(Argmax.first(one, 0, vocab));
                next[0] = new int[] {best[0]};
            }
            a.forEach(Sequence::close);
            b.forEach(Sequence::close);
        }
    }
}
