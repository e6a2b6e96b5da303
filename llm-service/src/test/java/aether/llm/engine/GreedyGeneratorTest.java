package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import aether.llm.arch.Architecture;
import aether.llm.arch.Numerics;
import aether.llm.gguf.GgufFile;
import aether.runtime.testing.SharedData;
import aether.scheduler.exec.ReferenceExecutor;
import java.io.IOException;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class GreedyGeneratorTest {

    @Test
    void shouldReportLogSoftmaxOfTheLargestLogitsWithTiesToTheLowerId() {
        Random r = new Random(5);
        float[] logits = new float[300];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) (r.nextGaussian() * 8);
        }
        logits[17] = 40f;
        logits[3] = 35f;
        logits[250] = 35f;
        List<TokenLogprob> top = GreedyGenerator.topLogprobs(logits, 4);
        double max = 40;
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        assertThat(top).extracting(TokenLogprob::id).startsWith(17, 3, 250);
        for (TokenLogprob t : top) {
            assertThat(t.logprob()).isCloseTo(logits[t.id()] - max - Math.log(sum), within(1e-12));
        }
        for (int i = 0; i < logits.length; i++) {
            if (i != 17 && i != 3 && i != 250) {
                assertThat(logits[i]).isLessThanOrEqualTo(logits[top.get(3).id()]);
            }
        }
    }

    @Test
    void shouldRejectNaNLogits() {
        float[] logits = {1, Float.NaN, 2};
        assertThatThrownBy(() -> GreedyGenerator.topLogprobs(logits, 1))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("token 1 is NaN");
    }

    /**
     * The same logits whether a prompt runs as one batch or token by token through the KV cache: checks the cache
     * layout, positions and the causal mask against each other (FLOAT32, so both paths round the same way).
     */
    @Test
    @Timeout(60)
    void shouldGiveTheSameLogitsForOneBatchAndForTokenByToken() throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("golden/forward/models/rand-qwen3-tied-s1-f16.gguf"))) {
            Architecture a = Architecture.load(file);
            ForwardRunner runner = new ForwardRunner(a, new ReferenceExecutor(), Numerics.FLOAT32);
            int[] prompt = {1, 95, 413, 340, 303, 469, 360, 30};
            KvCache batch = KvCache.create(a.config(), prompt.length);
            float[] batched = runner.forward(prompt, batch);
            KvCache single = KvCache.create(a.config(), prompt.length);
            float[] last = null;
            for (int id : prompt) {
                last = runner.forward(new int[] {id}, single);
            }
            assertThat(last).containsExactly(batched, within(1e-4f));
            for (int l = 0; l < a.config().blockCount(); l++) {
                assertThat(single.keys(l)).containsExactly(batch.keys(l), within(1e-5f));
                assertThat(single.values(l)).containsExactly(batch.values(l), within(1e-5f));
            }
        }
    }

    @Test
    @Timeout(60)
    void shouldReuseGraphsAcrossSequencesOfTheSameShape() throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            GreedyGenerator g = new GreedyGenerator(Architecture.load(file), new ReferenceExecutor(), Numerics.GGML_CPU);
            int[] prompt = {1, 403, 407, 261, 378};
            Generation first = g.generate(prompt, 6, 3);
            int built = g.runner().graphsBuilt();
            Generation second = g.generate(prompt, 6, 3);
            assertThat(built).isEqualTo(6);     // one prefill shape and five decode shapes
            assertThat(g.runner().graphsBuilt()).isEqualTo(built);
            assertThat(second.ids()).containsExactly(first.ids());
            assertThat(second.top()).isEqualTo(first.top());
            assertThat(first.top()).allSatisfy(step -> assertThat(step).hasSize(3));
        }
    }

    @Test
    @Timeout(60)
    void shouldBoundTheKeptGraphsByCountAndRetainedCacheElements() throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            Architecture a = Architecture.load(file);
            int[] prompt = {1, 403, 407, 261, 378};
            float[] expected = new ForwardRunner(a, new ReferenceExecutor(), Numerics.FLOAT32)
                    .forward(prompt, KvCache.create(a.config(), 5));
            // stories260K: 5 layers x (32 + 32) cache elements per position = 320
            ForwardRunner byCount = new ForwardRunner(a, new ReferenceExecutor(), Numerics.FLOAT32, 2, Long.MAX_VALUE);
            ForwardRunner byElements = new ForwardRunner(a, new ReferenceExecutor(), Numerics.FLOAT32, 100, 320 * 4);
            for (ForwardRunner r : new ForwardRunner[] {byCount, byElements}) {
                KvCache cache = KvCache.create(a.config(), 5);
                float[] last = null;
                for (int id : prompt) {
                    last = r.forward(new int[] {id}, cache);
                }
                assertThat(last).containsExactly(expected, within(1e-4f));
            }
            assertThat(byCount.cachedGraphs()).isEqualTo(2);             // past 3 and 4
            // past p retains 320 p elements; at most 1280 together: only the newest (past 4) is left
            assertThat(byElements.cachedGraphs()).isEqualTo(1);
            assertThat(byElements.graphsBuilt()).isEqualTo(5);
        }
    }

    @Test
    @Timeout(60)
    void shouldRejectBadRequests() throws IOException {
        try (GgufFile file = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            GreedyGenerator g = new GreedyGenerator(Architecture.load(file), new ReferenceExecutor(), Numerics.GGML_CPU);
            assertThatThrownBy(() -> g.generate(new int[0], 1, 1)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> g.generate(new int[] {1}, 0, 1)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> g.generate(new int[] {1}, 1, 513)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> g.generate(new int[] {1, 512}, 1, 1))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("token id 512 at index 1 is out of range (expected: 0..511)");
            assertThatThrownBy(() -> g.generate(new int[] {1}, 2048, 1))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("exceeds the context length 2048");
        }
    }
}
