package aether.runtime.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class GgmlTypeTest {

    @Test
    void shouldMatchTypeIdsAndTensorSizesRecordedByLlamaCpp() throws IOException {
        JsonNode index = new ObjectMapper().readTree(SharedData.require("golden/quant/index.json").toFile());
        Set<GgmlType> seen = EnumSet.noneOf(GgmlType.class);
        int checked = 0;
        for (JsonNode variant : index.get("variants")) {
            for (JsonNode t : variant.get("tensors")) {
                GgmlType type = GgmlType.byId(t.get("ggml_type_id").asInt()).orElseThrow();
                assertThat(type.name()).isEqualTo(t.get("ggml_type").asText());
                long[] ne = new long[t.get("ne").size()];
                for (int i = 0; i < ne.length; i++) {
                    ne[i] = t.get("ne").get(i).asLong();
                }
                assertThat(type.bytesFor(ne)).as("%s in %s", t.get("name"), variant.get("file"))
                        .isEqualTo(t.get("n_bytes").asLong());
                seen.add(type);
                checked++;
            }
        }
        assertThat(checked).isGreaterThan(100);
        assertThat(seen).contains(GgmlType.Q4_0, GgmlType.Q6_K, GgmlType.IQ4_XS, GgmlType.BF16);
    }

    @Test
    void shouldHaveUniqueIdsAndBeFoundByIdAndName() {
        Set<Integer> ids = new HashSet<>();
        for (GgmlType t : GgmlType.values()) {
            assertThat(ids.add(t.id())).as("duplicate id %d", t.id()).isTrue();
            assertThat(GgmlType.byId(t.id())).contains(t);
            assertThat(GgmlType.byName(t.name().toLowerCase())).contains(t);
        }
        assertThat(GgmlType.values()).hasSize(32);
        assertThat(GgmlType.byId(4)).isEmpty();          // retired Q4_2
        assertThat(GgmlType.byId(31)).isEmpty();         // retired Q4_0_4_4
        assertThat(GgmlType.byId(-1)).isEmpty();
        assertThat(GgmlType.byId(1L << 40)).isEmpty();
    }

    @Test
    void shouldRejectRowsThatAreNotWholeBlocks() {
        assertThatThrownBy(() -> GgmlType.Q4_K.bytesFor(new long[] {100, 2}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Q4_K").hasMessageContaining("ne[0]=100").hasMessageContaining("256");
        assertThatThrownBy(() -> GgmlType.Q8_0.bytesFor(33)).hasMessageContaining("33");
        assertThatThrownBy(() -> GgmlType.F32.bytesFor(new long[] {4, -1})).hasMessageContaining("negative");
    }

    @Test
    void shouldDetectOverflowInsteadOfWrappingAround() {
        assertThatThrownBy(() -> GgmlType.F32.bytesFor(new long[] {1L << 40, 1L << 30}))
                .isInstanceOf(ArithmeticException.class);
        assertThatThrownBy(() -> GgmlType.F64.bytesFor(Long.MAX_VALUE / 4)).isInstanceOf(ArithmeticException.class);
        assertThat(GgmlType.Q4_0.bytesFor(new long[] {4096, 14336})).isEqualTo(4096L / 32 * 18 * 14336);
    }
}
