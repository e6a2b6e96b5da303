package aether.device.cpu.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link VectorSupport#defaultBits()} follows {@code aether.vector.bits} when it is asked (each {@code Matmul} asks once),
 * not only at class initialization, so that one JVM can make kernels of both widths ({@code DecodeRace}); a bad value
 * is refused with the property named.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class VectorSupportTest {
    private final String saved = System.getProperty("aether.vector.bits");

    @AfterEach
    void restore() {
        if (saved == null) {
            System.clearProperty("aether.vector.bits");
        } else {
            System.setProperty("aether.vector.bits", saved);
        }
    }

    @Test
    void shouldReadTheWidthPropertyEachTimeItIsAsked() {
        assumeTrue(VectorSupport.available(), "vector module unavailable");
        System.clearProperty("aether.vector.bits");
        assertThat(VectorSupport.defaultBits()).isEqualTo(VectorSupport.wideAvailable() ? 512 : 256);
        System.setProperty("aether.vector.bits", "256");
        assertThat(VectorSupport.defaultBits()).isEqualTo(256);
        System.clearProperty("aether.vector.bits");
        assertThat(VectorSupport.defaultBits()).isEqualTo(VectorSupport.wideAvailable() ? 512 : 256);
    }

    @Test
    void shouldRejectAWidthOtherThan256Or512() {
        System.setProperty("aether.vector.bits", "128");
        assertThatThrownBy(VectorSupport::defaultBits).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("aether.vector.bits").hasMessageContaining("'128'").hasMessageContaining("256 or 512");
    }
}
