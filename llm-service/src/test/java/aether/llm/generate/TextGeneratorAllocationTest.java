package aether.llm.generate;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.engine.InferenceModel;
import aether.llm.engine.Sequence;
import aether.llm.gguf.GgufFile;
import aether.llm.model.ModelConfig;
import aether.llm.sampling.SamplerConfig;
import aether.llm.tokenizer.Tokenizer;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What the generation loop itself allocates per token, measured over a model whose step costs (and allocates)
 * nothing: a fixed table of logits indexed by the last token. The loop's own per-token garbage is the engine
 * contract's {@code BatchEntry} record (32 bytes) plus the amortised growth of the output text and token arrays and
 * their copies into the {@link Completion} (about 40 bytes a token here; measured ~70 in all).
 */
@Timeout(120)
class TextGeneratorAllocationTest {

    /** Logits depend only on the entry's last token; sequences only count positions. */
    static final class TableModel implements InferenceModel {
        final ModelConfig config;
        final float[][] table;
        final int context;

        TableModel(int vocab, int context) {
            this.config = new ModelConfig("llama", vocab, 64, 1, 172, 8, 4, 8, 8, 8, 10000, 1, 1e-5, context, 0, 0, 0);
            this.context = context;
            this.table = new float[vocab][vocab];
            Random r = new Random(1);
            for (float[] row : table) {
                for (int i = 0; i < vocab; i++) {
                    row[i] = (float) (r.nextGaussian() * 3);
                }
            }
        }

        @Override
        public ModelConfig config() {
            return config;
        }

        @Override
        public int contextSize() {
            return context;
        }

        @Override
        public Sequence newSequence() {
            return new TableSequence();
        }

        @Override
        public void step(List<BatchEntry> batch, Output output, float[] logits) {
            if (output != Output.LAST_LOGITS) {
                throw new IllegalArgumentException("the table model has only last-token logits");
            }
            for (int i = 0; i < batch.size(); i++) {
                BatchEntry e = batch.get(i);
                ((TableSequence) e.sequence()).length += e.length();
                System.arraycopy(table[e.tokens()[e.to() - 1]], 0, logits, i * config.vocabSize(), config.vocabSize());
            }
        }

        @Override
        public KvStats kvStats() {
            return new KvStats(16, 1, 0);
        }

        @Override
        public void close() {}
    }

    static final class TableSequence implements Sequence {
        int length;
        boolean closed;

        @Override
        public int length() {
            return length;
        }

        @Override
        public void truncate(int n) {
            length = n;
        }

        @Override
        public boolean isClosed() {
            return closed;
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    private static long allocatedBy(TextGenerator generator, int tokens) {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        var request = GenerationRequest.of(new int[] {1, 400, 401}, tokens, SamplerConfig.defaults(3))
                .withIgnoreEndOfGeneration(true).withStopStrings(List.of("never appears"));
        long before = threads.getCurrentThreadAllocatedBytes();
        Completion c = generator.generate(request, GenerationListener.NONE);
        long after = threads.getCurrentThreadAllocatedBytes();
        assertThat(c.generatedTokens()).isEqualTo(tokens);
        return after - before;
    }

    @Test
    void shouldAllocateOnlyABatchEntryAndAmortisedGrowthPerToken() throws IOException {
        Tokenizer tokenizer;
        try (GgufFile f = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            tokenizer = Tokenizer.fromGguf(f.metadata());
        }
        var generator = new TextGenerator(new TableModel(512, 20_000), tokenizer, 64, 1);
        allocatedBy(generator, 6000);                 // warm-up: JIT
        long small = allocatedBy(generator, 2000);
        long large = allocatedBy(generator, 12_000);
        double perToken = (large - small) / 10_000.0;
        assertThat(perToken).as("bytes per generated token").isLessThan(96);
    }
}
