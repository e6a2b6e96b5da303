package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.arch.Architecture;
import aether.llm.arch.Numerics;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.InferenceModel.Output;
import aether.llm.gguf.GgufFile;
import aether.llm.model.ModelConfig;
import aether.llm.model.ModelWeights;
import aether.runtime.ir.DType;
import aether.runtime.testing.SharedData;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.exec.WeightRows;
import java.io.IOException;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Steps that return a row per token ({@link Output#ALL_HIDDEN} for embeddings, {@link Output#ALL_LOGITS} for prompt
 * log-probabilities): the fast engine against the exact contiguous reference (float64 {@code ReferenceExecutor}, one
 * token at a time through the per-shape graphs), the hidden state against the logits it must produce through the LM
 * head, batching and chunking against single runs.
 */
class HiddenStateStepTest {

    /**
     * Fast (float32 kernels, f32 KV) against float64, relative to the largest hidden component: measured 6e-7
     * (stories260K), 9e-7 (llama f32), 1.3e-6 (gemma2 f16), 1e-6 (phi3 f16), 1.9e-6 (qwen3 f16).
     */
    static final double RELATIVE_TOLERANCE = 2e-5;

    private static int[] tokens(long seed, int n, int vocab) {
        Random r = new Random(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = 1 + r.nextInt(vocab - 1);
        }
        return ids;
    }

    private static float[] rows(InferenceModel m, Output output, int[] ids) {
        float[] out = new float[ids.length * output.width(m.config())];
        try (Sequence s = m.newSequence()) {
            m.step(List.of(BatchEntry.of(s, ids)), output, out);
            assertThat(s.length()).isEqualTo(ids.length);
        }
        return out;
    }

    private static double maxAbs(float[] a) {
        double m = 0;
        for (float x : a) {
            m = Math.max(m, Math.abs(x));
        }
        return m;
    }

    private static double maxDiff(float[] a, float[] b) {
        assertThat(a).hasSameSizeAs(b);
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }

    @ParameterizedTest
    @ValueSource(strings = {"models/stories260K.gguf", "golden/forward/models/rand-llama-s1-f32.gguf",
        "golden/forward/models/rand-gemma2-swa-s1-f16.gguf", "golden/forward/models/rand-phi3-s1-f16.gguf",
        "golden/forward/models/rand-qwen3-tied-s1-f16.gguf"})
    @Timeout(300)
    void fastHiddenStatesShouldMatchTheFloat64Reference(String model) throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require(model))) {
            Architecture arch = Architecture.load(file);
            ModelConfig c = arch.config();
            int[] ids = tokens(7, 21, c.vocabSize());
            var reference = new ReferenceInferenceModel(arch, new ReferenceExecutor(), Numerics.FLOAT32, 64, 16,
                    () -> {});
            float[] expected = rows(reference, Output.ALL_HIDDEN, ids);
            double scale = maxAbs(expected);
            try (var fast = PagedInferenceModel.open(arch, Numerics.FLOAT32, 64, 32, 16, DType.F32, 2, () -> {})) {
                float[] got = rows(fast, Output.ALL_HIDDEN, ids);
                double diff = maxDiff(got, expected);
                System.out.printf(java.util.Locale.ROOT, "hidden %s: max |fast - reference| %.3g, max |h| %.3g%n",
                        model, diff, scale);
                assertThat(diff).as(model + ": max |hidden difference| relative to max |h|")
                        .isLessThanOrEqualTo(RELATIVE_TOLERANCE * scale);
            }
            // the rows really depend on the token and position (not one row repeated)
            int e = c.embeddingLength();
            double spread = 0;
            for (int t = 1; t < ids.length; t++) {
                spread = Math.max(spread, maxDiff(java.util.Arrays.copyOfRange(expected, 0, e),
                        java.util.Arrays.copyOfRange(expected, t * e, (t + 1) * e)));
            }
            assertThat(spread).isGreaterThan(1e-2 * scale);
        }
    }

    @Test
    @Timeout(120)
    void hiddenStatesThroughTheLmHeadShouldGiveEveryPositionsLogits() throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            Architecture arch = Architecture.load(file);
            ModelConfig c = arch.config();
            int vocab = c.vocabSize();
            int embd = c.embeddingLength();
            var weights = new ModelWeights(file, "llama");
            WeightRows head = weights.optionalMatrix("output.weight", vocab, embd)
                    .orElseGet(() -> weights.matrix("token_embd.weight", vocab, embd));
            int[] ids = tokens(3, 17, vocab);
            try (var fast = PagedInferenceModel.open(arch, Numerics.FLOAT32, 64, 32, 16, DType.F32, 2, () -> {})) {
                float[] hidden = rows(fast, Output.ALL_HIDDEN, ids);
                float[] logits = rows(fast, Output.ALL_LOGITS, ids);
                float[] row = new float[embd];
                double worst = 0;
                for (int t = 0; t < ids.length; t++) {
                    for (int v = 0; v < vocab; v++) {
                        head.row(v, row);
                        double dot = 0;
                        for (int i = 0; i < embd; i++) {
                            dot += (double) row[i] * hidden[t * embd + i];
                        }
                        worst = Math.max(worst, Math.abs(dot - logits[t * vocab + v]));
                    }
                }
                assertThat(worst).as("max |h·Wᵀ - logits|").isLessThan(1e-3);
                // the same rows from the exact contiguous reference (float64, token by token)
                var reference = new ReferenceInferenceModel(arch, new ReferenceExecutor(), Numerics.FLOAT32, 64, 16,
                        () -> {});
                assertThat(maxDiff(logits, rows(reference, Output.ALL_LOGITS, ids))).isLessThan(2e-3);
                // every row of ALL_LOGITS is the last-token logits of that prefix
                for (int n : new int[] {1, 9, ids.length}) {
                    float[] last = new float[vocab];
                    try (Sequence s = fast.newSequence()) {
                        fast.step(List.of(new BatchEntry(s, ids, 0, n)), last);
                    }
                    assertThat(maxDiff(last, java.util.Arrays.copyOfRange(logits, (n - 1) * vocab, n * vocab)))
                            .as("prefix " + n).isLessThan(1e-4);
                }
            }
        }
    }

    @Test
    @Timeout(120)
    void batchedAndChunkedHiddenStepsShouldEqualSingleRuns() throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            Architecture arch = Architecture.load(file);
            int vocab = arch.config().vocabSize();
            int embd = arch.config().embeddingLength();
            int[] a = tokens(11, 13, vocab);
            int[] b = tokens(12, 30, vocab);
            // batch 16: b (30 tokens) and the pair (43) go through the per-entry chunked path
            try (var m = PagedInferenceModel.open(arch, Numerics.FLOAT32, 64, 16, 16, DType.F32, 2, () -> {});
                    var wide = PagedInferenceModel.open(arch, Numerics.FLOAT32, 64, 64, 16, DType.F32, 2, () -> {})) {
                float[] aloneA = rows(wide, Output.ALL_HIDDEN, a);
                float[] aloneB = rows(wide, Output.ALL_HIDDEN, b);
                float[] both = new float[(a.length + b.length) * embd];
                for (InferenceModel model : List.of(m, wide)) {
                    try (Sequence sa = model.newSequence(); Sequence sb = model.newSequence()) {
                        model.step(List.of(BatchEntry.of(sa, a), BatchEntry.of(sb, b)), Output.ALL_HIDDEN, both);
                    }
                    float[] gotA = java.util.Arrays.copyOfRange(both, 0, a.length * embd);
                    float[] gotB = java.util.Arrays.copyOfRange(both, a.length * embd, both.length);
                    assertThat(maxDiff(gotA, aloneA)).isLessThan(1e-4);
                    assertThat(maxDiff(gotB, aloneB)).isLessThan(1e-4);
                }
                // a prompt fed in two steps (with a KV cache between them) gives the same rows as one step
                float[] split = new float[b.length * embd];
                try (Sequence s = wide.newSequence()) {
                    float[] first = new float[10 * embd];
                    wide.step(List.of(new BatchEntry(s, b, 0, 10)), Output.ALL_HIDDEN, first);
                    float[] rest = new float[(b.length - 10) * embd];
                    wide.step(List.of(new BatchEntry(s, b, 10, b.length)), Output.ALL_HIDDEN, rest);
                    System.arraycopy(first, 0, split, 0, first.length);
                    System.arraycopy(rest, 0, split, first.length, rest.length);
                }
                assertThat(maxDiff(split, aloneB)).isLessThan(1e-4);
            }
        }
    }

    @Test
    @Timeout(120)
    void rowStepsShouldNotEvictDecodeShapesAndShouldCheckTheOutputLength() throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            Architecture arch = Architecture.load(file);
            int vocab = arch.config().vocabSize();
            int embd = arch.config().embeddingLength();
            try (var m = PagedInferenceModel.open(arch, Numerics.FLOAT32, 64, 32, 16, DType.F32, 2, () -> {})) {
                float[] logits = new float[vocab];
                try (Sequence s = m.newSequence()) {
                    m.step(List.of(BatchEntry.of(s, 5, 6, 7)), logits);
                    m.step(List.of(BatchEntry.of(s, 8)), logits);
                }
                int decodeShapes = m.compiledShapes();
                for (int n = 1; n <= 12; n++) {
                    rows(m, Output.ALL_HIDDEN, tokens(n, n, vocab));
                }
                assertThat(m.compiledShapes()).isEqualTo(decodeShapes);
                assertThat(m.compiledRowShapes()).isEqualTo(PagedInferenceModel.MAX_ROW_SHAPES);
                try (Sequence s = m.newSequence()) {
                    assertThatThrownBy(() -> m.step(List.of(BatchEntry.of(s, 1, 2, 3)), Output.ALL_HIDDEN,
                            new float[3 * embd - 1]))
                            .isInstanceOf(IllegalArgumentException.class)
                            .hasMessageContaining("3 rows of " + embd);
                    assertThat(s.length()).isZero();
                }
                assertThat(m.kvStats().usedBlocks()).isZero();
            }
        }
    }
}
