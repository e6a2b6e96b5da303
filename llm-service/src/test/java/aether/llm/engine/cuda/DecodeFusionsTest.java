package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** The fusion switches as the JVM options give them (no GPU needed). */
class DecodeFusionsTest {

    @Test
    void everyFusionIsOffUnlessSwitchedOn() {
        assertThat(DecodeFusions.parse(name -> null)).isEqualTo(DecodeFusions.NONE);
        assertThat(DecodeFusions.parse(Map.of("aether.cuda.fuseSwiglu", "true")::get))
                .isEqualTo(new DecodeFusions(false, true, false));
        assertThat(DecodeFusions.parse(Map.of("aether.cuda.fuseNorm", "TRUE", "aether.cuda.fuseRope", " true ")::get))
                .isEqualTo(new DecodeFusions(true, false, true));
        assertThat(DecodeFusions.parse(Map.of("aether.cuda.fuseNorm", "true", "aether.cuda.fuseSwiglu", "true",
                "aether.cuda.fuseRope", "true")::get)).isEqualTo(DecodeFusions.ALL);
        assertThat(DecodeFusions.parse(Map.of("aether.cuda.fuseRope", "false")::get)).isEqualTo(DecodeFusions.NONE);
        assertThat(DecodeFusions.ALL.swigluRows()).as("SwiGLU by rows is off unless asked for").isFalse();
        assertThat(DecodeFusions.parse(Map.of("aether.cuda.fuseNorm", "true", "aether.cuda.fuseSwiglu", "true",
                "aether.cuda.fuseRope", "true", "aether.cuda.swigluRows", "true")::get))
                .isEqualTo(new DecodeFusions(true, true, true, true));
    }

    @Test
    void aValueOtherThanTrueOrFalseIsRefusedByName() {
        assertThatThrownBy(() -> DecodeFusions.parse(Map.of("aether.cuda.fuseRope", "off")::get))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("-Daether.cuda.fuseRope=off (expected true or false)");
    }

    @Test
    void describesWhatIsOn() {
        assertThat(DecodeFusions.ALL.describe()).isEqualTo("norm, swiglu, rope");
        assertThat(DecodeFusions.NONE.describe()).isEqualTo("none");
        assertThat(new DecodeFusions(false, true, true).describe()).isEqualTo("swiglu, rope");
        assertThat(new DecodeFusions(false, false, true).describe()).isEqualTo("rope");
        assertThat(new DecodeFusions(true, true, true, true).describe()).isEqualTo("norm, swiglu (by rows), rope");
    }
}
