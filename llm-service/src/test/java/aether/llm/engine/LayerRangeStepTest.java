package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.arch.Architecture;
import aether.llm.arch.LayerRange;
import aether.llm.arch.Numerics;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.InferenceModel.Output;
import aether.llm.gguf.GgufFile;
import aether.llm.synth.SynthSpec;
import aether.llm.synth.SyntheticModel;
import aether.runtime.ir.DType;
import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A model split at a layer (what {@code --gpu-layers} does between the CPU and the GPU), run entirely on the CPU
 * engine: layers {@code [0, k)} give the residual stream of every token, layers {@code [k, n)} continue from those rows,
 * each part with its own KV cache. Every split point must give the whole model's logits, for a prompt and for the
 * decode steps after it (which read both parts' caches); so the hand-over is the right tensor at the right place.
 */
@Timeout(120)
class LayerRangeStepTest {

    @TempDir
    Path dir;

    /**
     * The split graphs run the same kernels on the same numbers as the whole graph, except where fusion across the cut
     * differs: measured max |difference| / max |logit| exactly 0 for most steps, up to 1.3e-5 (a float summed in
     * another order, then a K/V value rounding to the neighbouring f16). A hand-over at the wrong layer or of the wrong
     * rows is off by order 1.
     */
    static final double RELATIVE_TOLERANCE = 1e-4;

    private static int[] tokens(long seed, int n, int vocab) {
        Random r = new Random(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = 1 + r.nextInt(vocab - 1);
        }
        return ids;
    }

    private static PagedInferenceModel model(Architecture arch, LayerRange range, int batch) {
        return PagedInferenceModel.open(arch, range, Numerics.FLOAT32, 64, batch, 2 * 64 / 16, DType.F16, 2, () -> {});
    }

    /** The two parts as one model: the first part's residual rows are the second part's input. */
    private static void splitStep(PagedInferenceModel head, PagedInferenceModel tail, List<BatchEntry> front,
            List<BatchEntry> back, float[] logits) {
        int tokens = 0;
        for (BatchEntry e : front) {
            tokens += e.length();
        }
        float[] residual = new float[tokens * head.config().embeddingLength()];
        head.step(front, null, Output.ALL_HIDDEN, residual);
        tail.step(back, residual, Output.LAST_LOGITS, logits);
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        double max = 0, diff = 0;
        for (int i = 0; i < expected.length; i++) {
            max = Math.max(max, Math.abs(expected[i]));
            diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
        }
        assertThat(max).as(what + ": logits not all zero").isGreaterThan(0);
        assertThat(diff / max).as(what + ": max |split - whole| / max |whole|").isLessThanOrEqualTo(RELATIVE_TOLERANCE);
    }

    private static int argmax(float[] v, int from, int n) {
        int best = from;
        for (int i = from; i < from + n; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best - from;
    }

    /**
     * Two sequences in one step (prompts of 9 and 5 tokens, in chunks of 4 when {@code batch} is 4, so the hand-over
     * rows are read at offsets), then 6 greedy decode steps of both together; every split point of the model.
     */
    private static void everySplitMatchesTheWholeModel(Architecture arch, int batch) {
        int layers = arch.config().blockCount();
        int vocab = arch.config().vocabSize();
        int[] p0 = tokens(1, 9, vocab), p1 = tokens(2, 5, vocab);
        for (int k = 1; k < layers; k++) {
            try (PagedInferenceModel whole = model(arch, LayerRange.all(layers), batch);
                    PagedInferenceModel head = model(arch, new LayerRange(0, k, layers), batch);
                    PagedInferenceModel tail = model(arch, new LayerRange(k, layers, layers), batch);
                    Sequence w0 = whole.newSequence(); Sequence w1 = whole.newSequence();
                    Sequence h0 = head.newSequence(); Sequence h1 = head.newSequence();
                    Sequence t0 = tail.newSequence(); Sequence t1 = tail.newSequence()) {
                float[] expected = new float[2 * vocab], actual = new float[2 * vocab];
                int[] n0 = p0, n1 = p1;
                for (int step = 0; step < 7; step++) {
                    whole.step(List.of(BatchEntry.of(w0, n0), BatchEntry.of(w1, n1)), expected);
                    splitStep(head, tail, List.of(BatchEntry.of(h0, n0), BatchEntry.of(h1, n1)),
                            List.of(BatchEntry.of(t0, n0), BatchEntry.of(t1, n1)), actual);
                    assertClose(expected, actual, "split after layer " + k + ", step " + step + " (batch " + batch + ")");
                    n0 = new int[] {argmax(expected, 0, vocab)};
                    n1 = new int[] {argmax(expected, vocab, vocab)};
                    assertThat(new int[] {argmax(actual, 0, vocab), argmax(actual, vocab, vocab)})
                            .as("greedy ids after layer split " + k).containsExactly(n0[0], n1[0]);
                }
                assertThat(h0.length()).isEqualTo(t0.length()).isEqualTo(w0.length()).isEqualTo(9 + 6);
                // the parts hold KV memory only for their own layers
                assertThat(head.kvCacheBytes() + tail.kvCacheBytes()).isEqualTo(whole.kvCacheBytes());
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {512, 4})
    void stories260KSplitAtEveryLayerGivesTheWholeModelsLogits(int batch) throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            everySplitMatchesTheWholeModel(Architecture.load(file), batch);
        }
    }

    @Test
    void quantizedSyntheticModelSplitAtEveryLayer() throws IOException {
        Path vocab = SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
        SynthSpec spec = new SynthSpec("synth-split-test", 4, 128, 256, 4, 2, 256, 10000f, 1e-5f, GgmlType.Q4_0, 7);
        Path path = dir.resolve("split.gguf");
        SyntheticModel.of(spec, vocab).write(path, 2, done -> {});
        try (GgufFile file = GgufFile.open(path)) {
            everySplitMatchesTheWholeModel(Architecture.load(file), 512);
        }
    }

    @Test
    void partsRefuseWhatTheirRangeCannotDo() throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            Architecture arch = Architecture.load(file);
            int layers = arch.config().blockCount();
            int dim = arch.config().embeddingLength();
            try (PagedInferenceModel head = model(arch, new LayerRange(0, 2, layers), 512);
                    PagedInferenceModel tail = model(arch, new LayerRange(2, layers, layers), 512);
                    Sequence h = head.newSequence(); Sequence t = tail.newSequence()) {
                List<BatchEntry> hb = List.of(BatchEntry.of(h, 5, 6)), tb = List.of(BatchEntry.of(t, 5, 6));
                float[] logits = new float[arch.config().vocabSize()];
                assertThatThrownBy(() -> head.step(hb, logits))
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("LAST_LOGITS from a model of layers [0, 2) of " + layers)
                        .hasMessageContaining("residual stream only (ALL_HIDDEN)");
                assertThatThrownBy(() -> tail.step(tb, logits))
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("no hidden input rows for a model of layers [2, " + layers)
                        .hasMessageContaining("after layer 1");
                assertThatThrownBy(() -> tail.step(tb, new float[dim], Output.LAST_LOGITS, logits))
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("hidden input of " + dim + " floats for 2 tokens");
                assertThatThrownBy(() -> head.step(hb, new float[2 * dim], Output.ALL_HIDDEN, new float[2 * dim]))
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("it embeds its token ids");
                assertThat(h.length()).isZero();
                assertThat(t.length()).isZero();
            }
            assertThatThrownBy(() -> new LayerRange(3, 3, layers))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("layer range [3, 3) of a model of " + layers + " layers");
            assertThatThrownBy(() -> model(arch, new LayerRange(0, 2, layers + 1), 512))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("for a model of " + layers + " layers");
        }
    }

    /**
     * The first part of a split model steps only with residual rows; its decode shape must live with the prefill
     * shapes (kept {@value PagedInferenceModel#MAX_SHAPES}), not among the few row shapes of embeddings and prompt
     * scoring, or prompts of a few different lengths would evict it and stall decoding with a recompile.
     */
    @Test
    void aFrontPartKeepsItsDecodeShapeAmongTheStepShapes() throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            Architecture arch = Architecture.load(file);
            int layers = arch.config().blockCount();
            int dim = arch.config().embeddingLength();
            try (PagedInferenceModel head = model(arch, new LayerRange(0, 2, layers), 512)) {
                for (int n = 1; n <= PagedInferenceModel.MAX_ROW_SHAPES + 2; n++) {
                    try (Sequence s = head.newSequence()) {
                        int[] ids = tokens(n, n, arch.config().vocabSize());
                        head.step(List.of(BatchEntry.of(s, ids)), null, Output.ALL_HIDDEN, new float[n * dim]);
                    }
                }
                assertThat(head.compiledShapes()).isEqualTo(PagedInferenceModel.MAX_ROW_SHAPES + 2);
                assertThat(head.compiledRowShapes()).isZero();
            }
        }
    }

    @Test
    void referenceBackendRunsTheSplitToo() throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            Architecture arch = Architecture.load(file);
            int layers = arch.config().blockCount();
            int vocab = arch.config().vocabSize();
            int[] prompt = tokens(3, 6, vocab);
            try (PagedInferenceModel whole = PagedInferenceModel.reference(arch, Numerics.FLOAT32, 64, 64, 4,
                    DType.F32, () -> {});
                    PagedInferenceModel head = PagedInferenceModel.reference(arch, new LayerRange(0, 3, layers),
                            Numerics.FLOAT32, 64, 64, 4, DType.F32, () -> {});
                    PagedInferenceModel tail = PagedInferenceModel.reference(arch, new LayerRange(3, layers, layers),
                            Numerics.FLOAT32, 64, 64, 4, DType.F32, () -> {});
                    Sequence w = whole.newSequence(); Sequence h = head.newSequence(); Sequence t = tail.newSequence()) {
                float[] expected = new float[vocab], actual = new float[vocab];
                whole.step(List.of(BatchEntry.of(w, prompt)), expected);
                splitStep(head, tail, List.of(BatchEntry.of(h, prompt)), List.of(BatchEntry.of(t, prompt)), actual);
                assertClose(expected, actual, "reference split after layer 3");
            }
        }
    }
}
