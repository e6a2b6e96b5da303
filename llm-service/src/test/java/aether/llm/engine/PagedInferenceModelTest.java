package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.arch.Architecture;
import aether.llm.arch.Numerics;
import aether.llm.gguf.GgufFile;
import aether.runtime.ir.DType;
import aether.runtime.testing.SharedData;
import aether.scheduler.exec.ReferenceExecutor;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The paged engine on stories260K (a real model, f32 weights): the fast backend against the reference backend and the
 * contiguous-cache {@link ReferenceInferenceModel}; batching, truncation, chunking, capacity errors, and no allocation
 * in the decode loop.
 */
class PagedInferenceModelTest {

    private static GgufFile file;
    private static Architecture arch;
    private static int vocab;

    @BeforeAll
    static void open() throws IOException {
        Path p = SharedData.require("models/stories260K.gguf");
        file = GgufFile.open(p);
        arch = Architecture.load(file);
        vocab = arch.config().vocabSize();
    }

    @AfterAll
    static void close() {
        if (file != null) {
            file.close();
        }
    }

    private static PagedInferenceModel fast(int batch, int blocks, DType kv) {
        return PagedInferenceModel.open(arch, Numerics.FLOAT32, 256, batch, blocks, kv, 2, () -> {});
    }

    private static int[] prompt(long seed, int n) {
        Random r = new Random(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = 1 + r.nextInt(vocab - 1);
        }
        return ids;
    }

    /** Logits after the prompt and then after each of {@code decode} greedy tokens, one array per step. */
    private static float[][] run(InferenceModel m, int[] prompt, int decode) {
        float[][] out = new float[decode + 1][vocab];
        try (Sequence s = m.newSequence()) {
            m.step(List.of(InferenceModel.BatchEntry.of(s, prompt)), out[0]);
            for (int i = 0; i < decode; i++) {
                m.step(List.of(InferenceModel.BatchEntry.of(s, argmax(out[i]))), out[i + 1]);
            }
        }
        return out;
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    private static void assertClose(float[] actual, float[] expected, double tol, String what) {
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
        }
        assertThat(worst).as(what + ": max |logit difference|").isLessThanOrEqualTo(tol);
    }

    @Test
    @Timeout(120)
    void shouldMatchTheContiguousReferenceModelOnBothBackends() {
        int[] prompt = prompt(1, 19);
        ReferenceInferenceModel contiguous = new ReferenceInferenceModel(arch, new ReferenceExecutor(),
                Numerics.FLOAT32, 256, 64, () -> {});
        float[][] expected = run(contiguous, prompt, 20);
        // the paged ops on the reference executor compute what the per-shape graphs compute
        try (var ref = PagedInferenceModel.reference(arch, Numerics.FLOAT32, 256, 64, 64, DType.F32, () -> {})) {
            float[][] got = run(ref, prompt, 20);
            for (int i = 0; i < got.length; i++) {
                assertClose(got[i], expected[i], 1e-5, "reference backend step " + i);
            }
        }
        // float kernels: within float32 rounding of the double reference (logits here are O(10))
        try (var m = fast(64, 64, DType.F32)) {
            float[][] got = run(m, prompt, 20);
            for (int i = 0; i < got.length; i++) {
                assertClose(got[i], expected[i], 2e-3, "fast backend step " + i);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"f16", "q8_0"})
    @Timeout(120)
    void shouldStoreTheCacheTypeAsTheReferenceBackendModelsIt(String kvName) {
        // stories260K's kv rows are 32 wide: one q8_0 block per row
        DType kv = PagedInferenceModel.kvType(kvName);
        int[] prompt = prompt(2, 11);
        float[][] expected;
        try (var ref = PagedInferenceModel.reference(arch, Numerics.FLOAT32, 256, 64, 64, kv, () -> {})) {
            expected = run(ref, prompt, 12);
        }
        try (var m = fast(64, 64, kv)) {
            float[][] got = run(m, prompt, 12);
            for (int i = 0; i < got.length; i++) {
                // keys/values computed in float (kernels) vs double (reference) may round to neighbouring f16/q8_0
                // values before they are stored: a little more than the float-vs-double bound above
                assertClose(got[i], expected[i], 4e-3, kvName + " step " + i);
            }
        }
        try (var m = fast(64, 64, DType.F32)) {   // and the rounding is visible: f16/q8_0 differ from f32
            float[][] f32 = run(m, prompt, 12);
            double diff = 0;
            for (int i = 0; i < f32.length; i++) {
                for (int j = 0; j < vocab; j++) {
                    diff = Math.max(diff, Math.abs(f32[i][j] - expected[i][j]));
                }
            }
            assertThat(diff).as("%s cache vs f32 cache", kvName).isGreaterThan(1e-6);
        }
    }

    @Test
    @Timeout(120)
    void shouldGiveEachSequenceOfABatchItsLogitsAlone() {
        int[][] prompts = {prompt(3, 7), prompt(4, 18), prompt(5, 1)};
        try (var m = fast(64, 64, DType.F16)) {
            float[][][] alone = new float[prompts.length][][];
            for (int i = 0; i < prompts.length; i++) {
                alone[i] = run(m, prompts[i], 6);
            }
            Sequence[] seqs = {m.newSequence(), m.newSequence(), m.newSequence()};
            float[] logits = new float[3 * vocab];
            m.step(List.of(InferenceModel.BatchEntry.of(seqs[0], prompts[0]),
                    InferenceModel.BatchEntry.of(seqs[1], prompts[1]),
                    InferenceModel.BatchEntry.of(seqs[2], prompts[2])), logits);
            for (int step = 0; step <= 6; step++) {
                int[] next = new int[3];
                for (int i = 0; i < 3; i++) {
                    float[] mine = Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab);
                    assertClose(mine, alone[i][step], 1e-4, "sequence " + i + " step " + step);
                    next[i] = argmax(alone[i][step]);
                }
                if (step < 6) {   // a mixed decode step: the three sequences at different positions
                    m.step(List.of(InferenceModel.BatchEntry.of(seqs[0], next[0]),
                            InferenceModel.BatchEntry.of(seqs[1], next[1]),
                            InferenceModel.BatchEntry.of(seqs[2], next[2])), logits);
                }
            }
            for (Sequence s : seqs) {
                s.close();
            }
            assertThat(m.kvStats().usedBlocks()).isZero();
        }
    }

    @Test
    @Timeout(120)
    void shouldRepeatLogitsAfterTruncateAndFreeBlocks() {
        int[] prompt = prompt(6, 40);
        try (var m = fast(64, 64, DType.F16)) {
            Sequence s = m.newSequence();
            float[] first = new float[vocab];
            m.step(List.of(InferenceModel.BatchEntry.of(s, prompt)), first);
            assertThat(m.kvStats().usedBlocks()).isEqualTo(3);
            float[] afterMore = new float[vocab];
            m.step(List.of(InferenceModel.BatchEntry.of(s, prompt(7, 10))), afterMore);
            assertThat(m.kvStats().usedBlocks()).isEqualTo(4);

            s.truncate(20);     // keep the first 20 positions, re-run the rest of the prompt
            assertThat(s.length()).isEqualTo(20);
            assertThat(m.kvStats().usedBlocks()).isEqualTo(2);
            float[] again = new float[vocab];
            m.step(List.of(new InferenceModel.BatchEntry(s, prompt, 20, 40)), again);
            assertClose(again, first, 1e-4, "after truncate(20)");

            s.truncate(0);
            assertThat(m.kvStats().usedBlocks()).isZero();
            m.step(List.of(InferenceModel.BatchEntry.of(s, prompt)), again);
            assertClose(again, first, 1e-4, "after truncate(0)");
            s.close();
            assertThat(m.kvStats().usedBlocks()).isZero();
        }
    }

    @Test
    @Timeout(120)
    void shouldChunkPromptsLongerThanTheBatchSize() {
        int[] prompt = prompt(8, 45);
        float[][] whole;
        try (var m = fast(64, 64, DType.F16)) {
            whole = run(m, prompt, 3);
        }
        try (var m = fast(16, 64, DType.F16)) {   // 16 + 16 + 13
            float[][] chunked = run(m, prompt, 3);
            for (int i = 0; i < whole.length; i++) {
                assertClose(chunked[i], whole[i], 1e-4, "chunked step " + i);
            }
        }
    }

    @Test
    @Timeout(60)
    void shouldChangeNothingWhenTheCacheIsFull() {
        try (var m = fast(64, 4, DType.F16)) {      // 4 blocks = 64 positions in all; context 256
            Sequence a = m.newSequence();
            Sequence b = m.newSequence();
            float[] logits = new float[2 * vocab];
            m.step(List.of(InferenceModel.BatchEntry.of(a, prompt(9, 40))), logits);
            assertThat(m.kvStats().usedBlocks()).isEqualTo(3);
            float[] before = Arrays.copyOf(logits, vocab);
            // b needs 2 blocks, a one more: 3 > 1 free
            assertThatThrownBy(() -> m.step(List.of(InferenceModel.BatchEntry.of(a, prompt(10, 9)),
                    InferenceModel.BatchEntry.of(b, prompt(11, 17))), logits))
                    .isInstanceOf(InferenceModel.KvCacheFullException.class).hasMessageContaining("KV pool full");
            assertThat(a.length()).isEqualTo(40);
            assertThat(b.length()).isZero();
            assertThat(m.kvStats().usedBlocks()).isEqualTo(3);
            assertThatThrownBy(() -> m.step(List.of(InferenceModel.BatchEntry.of(a, a.length() > 0 ? 1 : 0),
                    InferenceModel.BatchEntry.of(a, 2)), logits)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("twice");
            assertThatThrownBy(() -> m.step(List.of(InferenceModel.BatchEntry.of(b, vocab)), logits))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id");
            // the state is intact: re-running a's last token after truncating gives the same logits
            a.truncate(39);
            m.step(List.of(new InferenceModel.BatchEntry(a, prompt(9, 40), 39, 40)), logits);
            assertClose(Arrays.copyOf(logits, vocab), before, 1e-4, "after the failed steps");
        }
        try (var m = PagedInferenceModel.open(arch, Numerics.FLOAT32, 20, 64, 8, DType.F16, 1, () -> {})) {
            Sequence s = m.newSequence();
            float[] logits = new float[vocab];
            m.step(List.of(InferenceModel.BatchEntry.of(s, prompt(12, 18))), logits);
            assertThatThrownBy(() -> m.step(List.of(InferenceModel.BatchEntry.of(s, prompt(13, 3))), logits))
                    .isInstanceOf(InferenceModel.KvCacheFullException.class).hasMessageContaining("context full");
            assertThat(s.length()).isEqualTo(18);
        }
    }

    @Test
    @Timeout(120)
    void shouldNotAllocateInTheDecodeLoop() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (var m = fast(64, 64, DType.F16)) {
            Sequence s = m.newSequence();
            float[] logits = new float[vocab];
            int[] token = {1};
            List<InferenceModel.BatchEntry> batch = List.of(InferenceModel.BatchEntry.of(s, token));
            m.step(List.of(InferenceModel.BatchEntry.of(s, prompt(14, 5))), logits);
            for (int i = 0; i < 100; i++) {      // warm-up: compile the decode graph, JIT the loop
                token[0] = argmax(logits);
                m.step(batch, logits);
            }
            s.truncate(5);
            int steps = 150;
            long before = threads.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < steps; i++) {
                token[0] = argmax(logits);
                m.step(batch, logits);
            }
            long perStep = (threads.getCurrentThreadAllocatedBytes() - before) / steps;
            assertThat(perStep).as("bytes allocated per decode step").isLessThan(1024);
        }
    }

    @Test
    @Timeout(120)
    void shouldKeepABoundedNumberOfCompiledShapes() {
        try (var m = fast(64, 64, DType.F16)) {
            float[][] first = new float[12][];
            for (int n = 1; n <= 12; n++) {     // twelve prompt lengths: twelve shapes, at most MAX_SHAPES kept
                first[n - 1] = run(m, prompt(20 + n, n), 0)[0];
                assertThat(m.compiledShapes()).isLessThanOrEqualTo(PagedInferenceModel.MAX_SHAPES);
            }
            for (int n = 1; n <= 12; n += 11) {  // an evicted shape compiles again and computes the same
                assertClose(run(m, prompt(20 + n, n), 0)[0], first[n - 1], 0, "prompt of " + n + " again");
            }
        }
    }

    @Test
    @Timeout(60)
    void shouldOpenFilesOnThePagedEngine() {
        Path p = SharedData.require("models/stories260K.gguf");
        EngineOptions options = EngineOptions.DEFAULTS.withContextSize(64).withMaxSequences(3).withThreads(1);
        int[] prompt = prompt(30, 9);
        try (LoadedModel loaded = LoadedModel.open(p, options); var m = fast(64, 64, DType.F16)) {
            assertThat(loaded.model()).isInstanceOf(PagedInferenceModel.class);
            assertThat(loaded.model().contextSize()).isEqualTo(64);
            assertThat(loaded.model().kvStats()).isEqualTo(new InferenceModel.KvStats(16, 12, 0));
            float[][] expected = run(m, prompt, 4);
            float[][] got = run(loaded.model(), prompt, 4);
            for (int i = 0; i < got.length; i++) {
                assertClose(got[i], expected[i], 1e-4, "LoadedModel step " + i);
            }
        }
    }

    @Test
    void shouldRejectAnUnknownKvType() {
        assertThatThrownBy(() -> PagedInferenceModel.kvType("q4_0")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("q4_0");
    }
}
