package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import aether.device.cuda.GpuFixture;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.PagedInferenceModel;
import aether.llm.engine.Sequence;
import aether.llm.synth.SynthSpec;
import aether.llm.synth.SyntheticModel;
import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code --gpu-layers N}: a 4-layer synthetic llama model split between the CPU engine and the GPU
 * ({@link HybridInferenceModel}) against the CPU engine alone, for every split point. Tolerances as {@link
 * CudaInferenceModelTest}'s (the GPU layers round as the all-GPU model does): F16 and BF16 1e-3, Q8_0 and Q4_0 3e-2
 * relative L2 error of the logits; where the CPU's best token leads by more than four times the largest logit
 * difference, the split model must pick it too. With F16 weights the free-running greedy ids must be the CPU's.
 */
@Tag("gpu")
@Timeout(300)
class HybridInferenceModelTest {

    static final int LAYERS = 4;

    @TempDir
    Path dir;

    private Path synth(GgmlType type, long seed) throws IOException {
        Path vocab = SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
        SynthSpec spec = new SynthSpec("synth-hybrid-test", LAYERS, 256, 512, 4, 2, 512, 10000f, 1e-5f, type, seed);
        Path file = dir.resolve("h-" + type + ".gguf");
        SyntheticModel.of(spec, vocab).write(file, 4, done -> {});
        return file;
    }

    @ParameterizedTest
    @CsvSource({"F16, 1e-3", "BF16, 1e-3", "Q8_0, 3e-2", "Q4_0, 3e-2"})
    void everySplitMatchesTheCpuEngine(GgmlType type, double tolerance) throws IOException {
        GpuFixture.assumeGpu();
        long seed = 20261207L + type.ordinal();
        Path file = synth(type, seed);
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(128).withMaxSequences(2);
        try (LoadedModel cpu = LoadedModel.open(file, options)) {
            InferenceModel c = cpu.model();
            int vocab = c.config().vocabSize();
            int[] prompt = new SplittableRandom(seed).ints(12, 0, vocab).toArray();
            int[] cpuGreedy = greedy(c, prompt, 16);
            for (int n = 1; n < LAYERS; n++) {
                try (LoadedModel split = CudaModels.open(file, options, new GpuLayers(n))) {
                    assertThat(split.model()).isInstanceOf(HybridInferenceModel.class);
                    HybridInferenceModel h = (HybridInferenceModel) split.model();
                    assertThat(h.gpuLayers()).isEqualTo(n);
                    assertThat(h.cpuPart().layers().end()).isEqualTo(LAYERS - n);
                    String what = type + " --gpu-layers " + n;
                    teacherForced(c, h, prompt, tolerance, what);
                    if (type == GgmlType.F16) {
                        assertThat(greedy(h, prompt, 16)).as(what + ": greedy ids").containsExactly(cpuGreedy);
                    }
                    twoSequencesInOneStep(c, h, prompt, tolerance, what);
                }
            }
        }
    }

    /** The prompt (12 tokens: GPU chunks of 8 and 4, so hand-over rows are read at an offset), then 8 decode steps. */
    private static void teacherForced(InferenceModel c, HybridInferenceModel h, int[] prompt, double tolerance,
            String what) {
        int vocab = c.config().vocabSize();
        float[] lc = new float[vocab], lh = new float[vocab];
        try (Sequence sc = c.newSequence(); Sequence sh = h.newSequence()) {
            c.step(List.of(BatchEntry.of(sc, prompt)), lc);
            h.step(List.of(BatchEntry.of(sh, prompt)), lh);
            compare(lc, lh, tolerance, what + ", prompt");
            float[] firstDecode = null;
            int firstToken = -1;
            for (int step = 0; step < 8; step++) {
                int next = argmax(lc);
                c.step(List.of(BatchEntry.of(sc, next)), lc);
                h.step(List.of(BatchEntry.of(sh, next)), lh);
                compare(lc, lh, tolerance, what + ", decode step " + step);
                if (step == 0) {
                    firstDecode = lh.clone();
                    firstToken = next;
                }
            }
            assertThat(sh.length()).isEqualTo(prompt.length + 8);
            // rewinding rewinds both parts: replaying the first decode token gives its logits again
            sh.truncate(prompt.length);
            h.step(List.of(BatchEntry.of(sh, firstToken)), lh);
            assertThat(lh).as(what + ": replay after truncate").containsExactly(firstDecode);
        }
    }

    /** A decode token of one sequence and a prompt of another in one step: the second's rows follow the first's. */
    private static void twoSequencesInOneStep(InferenceModel c, HybridInferenceModel h, int[] prompt, double tolerance,
            String what) {
        int vocab = c.config().vocabSize();
        int[] prefix = Arrays.copyOf(prompt, 5);
        try (Sequence a = h.newSequence(); Sequence b = h.newSequence(); Sequence ca = c.newSequence();
                Sequence cb = c.newSequence()) {
            float[] both = new float[2 * vocab], one = new float[vocab];
            h.step(List.of(BatchEntry.of(a, prompt)), one);
            c.step(List.of(BatchEntry.of(ca, prompt)), one);
            h.step(List.of(BatchEntry.of(a, 7), BatchEntry.of(b, prefix)), both);
            float[] expected = new float[2 * vocab];
            c.step(List.of(BatchEntry.of(ca, 7), BatchEntry.of(cb, prefix)), expected);
            compare(Arrays.copyOfRange(expected, 0, vocab), Arrays.copyOfRange(both, 0, vocab), tolerance,
                    what + ", batched decode entry");
            compare(Arrays.copyOfRange(expected, vocab, 2 * vocab), Arrays.copyOfRange(both, vocab, 2 * vocab),
                    tolerance, what + ", batched prompt entry");
            // a third sequence finds no GPU slot (2): the step fails and neither part keeps its tokens
            int cpuUsed = h.cpuPart().kvStats().usedBlocks();
            try (Sequence third = h.newSequence()) {
                assertThatThrownBy(() -> h.step(List.of(BatchEntry.of(third, prefix)), one))
                        .isInstanceOf(InferenceModel.KvCacheFullException.class);
                assertThat(third.length()).isZero();
                assertThat(h.cpuPart().kvStats().usedBlocks()).as("CPU part rolled back").isEqualTo(cpuUsed);
            }
        }
    }

    @Test
    void zeroAndAllLayersOpenTheSingleDeviceEngines() throws IOException {
        GpuFixture.assumeGpu();
        Path file = synth(GgmlType.Q8_0, 5);
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(64);
        try (LoadedModel none = CudaModels.open(file, options, new GpuLayers(0));
                LoadedModel all = CudaModels.open(file, options, new GpuLayers(99))) {
            assertThat(none.model()).isInstanceOf(PagedInferenceModel.class);
            assertThat(all.model()).isInstanceOf(CudaInferenceModel.class);
        }
        try (LoadedModel all = CudaModels.open(file, options, GpuLayers.ALL)) {
            assertThat(all.model()).isInstanceOf(CudaInferenceModel.class);
        }
        try (LoadedModel split = CudaModels.open(file, options, new GpuLayers(1))) {
            HybridInferenceModel h = (HybridInferenceModel) split.model();
            assertThat(h.gpuPart().firstLayer()).isEqualTo(LAYERS - 1);
            assertThat(h.gpuPart().kvCacheBytes()).as("f16 K and V of one layer, 64 positions, 2 kv heads of 64")
                    .isEqualTo(2L * 64 * 2 * 64 * 2);
            float[] l = new float[h.config().vocabSize()];
            try (Sequence s = h.newSequence()) {
                assertThatThrownBy(() -> h.step(List.of(BatchEntry.of(s, 1, 2)), InferenceModel.Output.ALL_LOGITS,
                        new float[2 * l.length])).hasMessageContaining("needs --device cpu");
                assertThatThrownBy(() -> h.gpuPart().step(List.of(BatchEntry.of(s, 1)), l))
                        .isInstanceOf(IllegalArgumentException.class);
            }
        }
    }

    private static int[] greedy(InferenceModel m, int[] prompt, int n) {
        int vocab = m.config().vocabSize();
        float[] logits = new float[vocab];
        int[] ids = new int[n];
        try (Sequence s = m.newSequence()) {
            m.step(List.of(BatchEntry.of(s, prompt)), logits);
            for (int i = 0; i < n; i++) {
                ids[i] = argmax(logits);
                m.step(List.of(BatchEntry.of(s, ids[i])), logits);
            }
        }
        return ids;
    }

    private static void compare(float[] cpu, float[] split, double tolerance, String what) {
        LogitsAgreement a = LogitsAgreement.check(cpu, split, tolerance, 4, what);
        System.out.printf("%s: relative error %.2e, max |diff| %.3e%n", what, a.relativeError(), a.maxDiff());
    }

    private static int argmax(float[] v) {
        return LogitsAgreement.argmax(v);
    }
}
