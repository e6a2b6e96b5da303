package aether.runtime.exchange;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.tensor.GgmlType;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import org.junit.jupiter.api.Test;

class TensorDescriptorTest {

    private final ObjectMapper json = new ObjectMapper();

    @Test
    void shouldRoundTripThroughJackson() throws Exception {
        var location = new TensorDescriptor.Location("node-2", ExchangeChannels.udp("10.0.0.7", 40123), 1002);
        var d = TensorDescriptor.of(17, 4, GgmlType.Q4_K, List.of(4096L, 11008L), location);
        String text = json.writeValueAsString(d);
        assertThat(json.readValue(text, TensorDescriptor.class)).isEqualTo(d);
        assertThat(json.readTree(text).fieldNames()).toIterable()
                .containsExactlyInAnyOrder("tensorId", "version", "type", "shape", "byteLength", "location");
        var local = TensorDescriptor.of(1, 1, GgmlType.F32, List.of(), TensorDescriptor.Location.local("n"));
        assertThat(json.readValue(json.writeValueAsString(local), TensorDescriptor.class)).isEqualTo(local);
        assertThat(local.location().inProcess()).isTrue();
    }

    @Test
    void shouldComputeByteLengthFromTypeAndShape() {
        var d = TensorDescriptor.of(1, 1, GgmlType.Q8_0, List.of(64L, 3L), TensorDescriptor.Location.local("n"));
        assertThat(d.byteLength()).isEqualTo(2 * 34 * 3);
        assertThat(d.ggmlType()).isEqualTo(GgmlType.Q8_0);
    }

    @Test
    void shouldRejectInconsistentDescriptors() {
        var here = TensorDescriptor.Location.local("n");
        assertThatThrownBy(() -> new TensorDescriptor(1, 2, "F32", List.of(10L), 39, here))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tensor 1 v2").hasMessageContaining("byteLength 39").hasMessageContaining("40");
        assertThatThrownBy(() -> new TensorDescriptor(1, 2, "Q9_9", List.of(10L), 40, here))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("type 'Q9_9'");
        assertThatThrownBy(() -> new TensorDescriptor(1, 2, "Q4_0", List.of(33L), 18, here))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("block size 32");
        assertThatThrownBy(() -> new TensorDescriptor(1, 2, "F32", List.of(-1L), 0, here))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative");
        assertThatThrownBy(() -> new TensorDescriptor.Location("n", "tcp://x", 1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("aeron:");
    }
}
