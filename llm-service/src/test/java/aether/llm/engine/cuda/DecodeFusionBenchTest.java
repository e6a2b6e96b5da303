package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The A/B table of {@link DecodeFusionBench} (no GPU: made-up rates). */
class DecodeFusionBenchTest {

    @Test
    void tableGivesTheMedianOfTheRoundsTheRatioToTheFirstAndWhetherTheBitsAgree() {
        double[][] rates = {{460, 470, 450}, {440, 430, 445}, {455, 455, 455}, {450, 449, 451}, {465, 461, 463},
            {470, 480, 475}};
        boolean[] same = {true, true, true, true, true, false};
        String t = DecodeFusionBench.table("m.gguf on H100", DecodeFusionBench.CONFIGS, 128, 3, rates, same);
        assertThat(t).startsWith("decode fusions A/B: m.gguf on H100, tg128, 3 rounds");
        assertThat(t).contains("| all              |      460.0 |      450.0 |      470.0 |   1.000x | reference  |");
        assertThat(t).contains("| none (default)   |      440.0 |      430.0 |      445.0 |   0.957x | yes        |");
        assertThat(t).contains("| all but rope     |      463.0 |      461.0 |      465.0 |   1.007x | yes        |");
        assertThat(t).contains("| swiglu by rows   |      475.0 |      470.0 |      480.0 |   1.033x | NO         |");
        assertThat(t.lines().count()).as("title, header, rule, 6 configurations").isEqualTo(9);
    }

    @Test
    void selectedConfigurationsComeInTheOrderGivenAndBadIndicesAreNamed() {
        assertThat(DecodeFusionBench.select("1, 5")).extracting(DecodeFusionBench.Config::name)
                .containsExactly("none (default)", "swiglu by rows");
        String t = DecodeFusionBench.table("m", DecodeFusionBench.select("5,1"), 16, 1, new double[][] {{2}, {1}},
                new boolean[] {true, true});
        assertThat(t).contains("| swiglu by rows   |        2.0 |        2.0 |        2.0 |   1.000x | reference  |")
                .contains("| none (default)   |        1.0 |        1.0 |        1.0 |   0.500x | yes        |");
        assertThatThrownBy(() -> DecodeFusionBench.select("1,6")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("configuration 6 (expected indices 0..5");
        assertThatThrownBy(() -> DecodeFusionBench.select("x")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("configuration x");
    }

    @Test
    void medianOfEvenAndOddCounts() {
        assertThat(DecodeFusionBench.median(new double[] {3, 1, 2})).isEqualTo(2);
        assertThat(DecodeFusionBench.median(new double[] {4, 1, 3, 2})).isEqualTo(2.5);
        assertThat(DecodeFusionBench.median(new double[] {7})).isEqualTo(7);
    }

    @Test
    void configurationsAreAllOnAllOffEachOffAloneThenSwigluByRows() {
        assertThat(DecodeFusionBench.CONFIGS).extracting(DecodeFusionBench.Config::fusions).containsExactly(
                DecodeFusions.ALL, DecodeFusions.NONE, new DecodeFusions(false, true, true),
                new DecodeFusions(true, false, true), new DecodeFusions(true, true, false),
                new DecodeFusions(true, true, true, true));
    }
}
