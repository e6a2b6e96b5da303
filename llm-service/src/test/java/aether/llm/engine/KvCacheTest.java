package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class KvCacheTest {

    private static float[][] rows(int layers, int tokens, int width, float base) {
        float[][] r = new float[layers][tokens * width];
        for (int l = 0; l < layers; l++) {
            for (int i = 0; i < r[l].length; i++) {
                r[l][i] = base + l * 1000 + i;
            }
        }
        return r;
    }

    @Test
    void shouldAppendPositionsPerLayerInOrder() {
        KvCache cache = new KvCache(2, 3, 4, 5);
        cache.append(2, rows(2, 2, 3, 0), rows(2, 2, 4, 0.5f));
        cache.append(1, rows(2, 1, 3, 100), rows(2, 1, 4, 100.5f));
        assertThat(cache.length()).isEqualTo(3);
        assertThat(cache.keys(1)).containsExactly(1000, 1001, 1002, 1003, 1004, 1005, 1100, 1101, 1102);
        assertThat(cache.values(0)).hasSize(12).startsWith(0.5f).endsWith(103.5f);
    }

    @Test
    void shouldRefuseToOverflowAndStayUnchanged() {
        KvCache cache = new KvCache(1, 2, 2, 3);
        cache.append(2, rows(1, 2, 2, 0), rows(1, 2, 2, 0));
        assertThatThrownBy(() -> cache.append(2, rows(1, 2, 2, 9), rows(1, 2, 2, 9)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("holds 2 of 3 positions, cannot append 2");
        assertThat(cache.length()).isEqualTo(2);
        assertThat(cache.keys(0)).containsExactly(0, 1, 2, 3);
    }

    @Test
    void shouldRejectRowsOfTheWrongWidth() {
        KvCache cache = new KvCache(1, 2, 2, 3);
        assertThatThrownBy(() -> cache.append(1, rows(1, 1, 3, 0), rows(1, 1, 2, 0)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("layer 0: 3 keys and 2 values for 1 positions (expected 2 and 2)");
        assertThat(cache.length()).isZero();
    }

    @Test
    void shouldForgetPositionsOnClear() {
        KvCache cache = new KvCache(1, 1, 1, 2);
        cache.append(2, rows(1, 2, 1, 0), rows(1, 2, 1, 0));
        cache.clear();
        assertThat(cache.length()).isZero();
        assertThat(cache.keys(0)).isEmpty();
    }
}
