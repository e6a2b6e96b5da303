package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import aether.llm.gguf.GgufMetadata;
import org.junit.jupiter.api.Test;

class PoolingTest {

    private static final float[] ROWS = {1, 2, 0, 3, -2, 4, 5, 0, 1, 0, 0, 2};   // 3 rows of 4

    private static Pooling.Pooler pool(Pooling p) {
        Pooling.Pooler pooler = p.pooler(4);
        for (int r = 0; r < 3; r++) {
            pooler.add(ROWS, r * 4);
        }
        return pooler;
    }

    @Test
    void shouldPoolMeanFirstAndLastRows() {
        assertThat(pool(Pooling.MEAN).pooled()).containsExactly(0, 2, 5 / 3.0, 5 / 3.0);
        assertThat(pool(Pooling.CLS).pooled()).containsExactly(1, 2, 0, 3);
        assertThat(pool(Pooling.LAST).pooled()).containsExactly(1, 0, 0, 2);
        assertThat(pool(Pooling.MEAN).rows()).isEqualTo(3);
    }

    @Test
    void shouldNormaliseToUnitLengthAndTruncateBeforeNormalising() {
        float[] full = pool(Pooling.CLS).normalized(4);
        double n = Math.sqrt(1 + 4 + 0 + 9);
        assertThat(full[0]).isCloseTo((float) (1 / n), within(1e-7f));
        assertThat(full[3]).isCloseTo((float) (3 / n), within(1e-7f));
        float[] two = pool(Pooling.CLS).normalized(2);
        assertThat(two[0]).isCloseTo((float) (1 / Math.sqrt(5)), within(1e-7f));
        assertThat(two[1]).isCloseTo((float) (2 / Math.sqrt(5)), within(1e-7f));
        double sum = 0;
        for (float x : pool(Pooling.MEAN).normalized(4)) {
            sum += x * x;
        }
        assertThat(sum).isCloseTo(1, within(1e-6));
        assertThatThrownBy(() -> pool(Pooling.MEAN).normalized(5)).hasMessageContaining("expected 1..4");
        assertThatThrownBy(() -> Pooling.MEAN.pooler(3).normalized(3)).hasMessageContaining("no rows");
    }

    @Test
    void shouldReadThePoolingTypeFromGgufAndRefuseUnpoolableOnes() {
        var md = GgufMetadata.builder().putUInt32("bert.pooling_type", 2).putInt32("qwen3.pooling_type", -1)
                .putUInt32("llama.pooling_type", 9).build();
        assertThat(Pooling.fromGguf(md, "bert")).contains(Pooling.CLS);
        assertThat(Pooling.fromGguf(md, "qwen3")).isEmpty();
        assertThat(Pooling.ofModel(md, "qwen3")).isEqualTo(Pooling.MEAN);
        assertThat(Pooling.ofModel(md, "gemma2")).isEqualTo(Pooling.MEAN);
        assertThatThrownBy(() -> Pooling.fromGguf(md, "llama")).hasMessageContaining("llama.pooling_type")
                .hasMessageContaining("9");
        assertThatThrownBy(() -> Pooling.NONE.pooler(4)).hasMessageContaining("none");
        assertThatThrownBy(() -> Pooling.RANK.pooler(4)).hasMessageContaining("rank");
    }
}
