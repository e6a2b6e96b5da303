package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cuda.GpuFixture;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.llm.synth.SynthSpec;
import aether.llm.synth.SyntheticModel;
import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A synthetic model's greedy decode with the single-token step's fusions ({@link DecodeFusions}: RMSNorm in the
 * residual GEMVs, SwiGLU in gate|up through counters or by rows, RoPE in q|k|v) on, each alone, and off: the same
 * token ids and the same logits
 * bit for bit (the fused kernels compute the same values in the same order; {@code FusedDecodeKernelsTest} checks them
 * one by one). Also for a split model (CPU layer 0, GPU layer 1 and the head: the GPU part's first norm stays a launch of
 * its own, its last down GEMV fuses the output norm).
 */
@Tag("gpu")
@Timeout(300)
class CudaDecodeFusionTest {

    private static final int STEPS = 12;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}, gpu layers {1}")
    @CsvSource({"Q4_0, -1", "Q8_0, -1", "F16, -1", "Q4_K, -1", "Q4_0, 1"})
    void greedyDecodeIsTheSameWithFusionsOnAndOff(GgmlType type, int gpuLayers) throws IOException {
        GpuFixture.assumeGpu();
        long seed = System.nanoTime();
        System.out.println(type + " seed " + seed);
        Path vocab = SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
        SynthSpec spec = new SynthSpec("synth-gpu-fusion", 2, 256, 512, 4, 2, 512, 10000f, 1e-5f, type, seed);
        Path file = dir.resolve("m-" + type + ".gguf");
        SyntheticModel.of(spec, vocab).write(file, 4, done -> {});
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(128).withMaxSequences(2);
        try (LoadedModel loaded = gpuLayers < 0 ? CudaModels.open(file, options)
                : CudaModels.open(file, options, new GpuLayers(gpuLayers))) {
            InferenceModel g = loaded.model();
            CudaInferenceModel gpu = g instanceof HybridInferenceModel split ? split.gpuPart()
                    : (CudaInferenceModel) g;
            int[] prompt = new SplittableRandom(seed).ints(9, 0, g.config().vocabSize()).toArray();
            gpu.useFusions(DecodeFusions.NONE);
            Greedy plain = greedy(g, prompt);
            for (DecodeFusions f : List.of(DecodeFusions.ALL, new DecodeFusions(true, false, false),
                    new DecodeFusions(false, true, false), new DecodeFusions(false, false, true),
                    new DecodeFusions(true, true, true, true), new DecodeFusions(false, true, false, true))) {
                gpu.useFusions(f);
                Greedy fused = greedy(g, prompt);
                assertThat(fused.ids()).as("greedy ids with fusions %s", f.describe()).containsExactlyElementsOf(plain.ids());
                for (int step = 0; step < STEPS; step++) {
                    assertThat(fused.logits().get(step)).as("logits of decode step %d with fusions %s", step,
                            f.describe()).containsExactly(plain.logits().get(step));
                }
            }
            System.out.println(type + " greedy ids " + plain.ids());
        }
    }

    private record Greedy(List<Integer> ids, List<float[]> logits) {}

    /** The prompt, then {@link #STEPS} single-token decode steps of the host's argmax, in a fresh sequence. */
    private static Greedy greedy(InferenceModel g, int[] prompt) {
        int vocab = g.config().vocabSize();
        float[] logits = new float[vocab];
        List<Integer> ids = new ArrayList<>();
        List<float[]> seen = new ArrayList<>();
        try (Sequence s = g.newSequence()) {
            g.step(List.of(BatchEntry.of(s, prompt)), logits);
            for (int step = 0; step < STEPS; step++) {
                int next = LogitsAgreement.argmax(logits);
                ids.add(next);
                g.step(List.of(BatchEntry.of(s, next)), logits);
                seen.add(logits.clone());
            }
        }
        return new Greedy(ids, seen);
    }
}
