package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Tokens per block of the prefill GEMM (no GPU needed: the choice is host arithmetic). */
class GemmTileTest {

    @ParameterizedTest(name = "{0} tokens x {1} rows on {2} SMs -> {3}")
    @CsvSource({
        "1, 4096, 132, 32",       // a short prompt: the smallest tile
        "32, 28672, 132, 32",
        "33, 28672, 132, 64",     // past 32 tokens, up to 64: one tile of 64
        "512, 28672, 132, 128",   // 8B gate|up: 224 row tiles x 4 = 896 blocks
        "512, 4096, 132, 64",     // 8B o/down: 128 blocks of 128 tokens would leave SMs idle
        "512, 6144, 132, 64",     // 8B q|k|v: 48 x 4 = 192 < 264
        "512, 6144, 40, 128"})    // a smaller chip fills with the large tile
    void largestTileThatStillFillsTheChip(int tokens, int rows, int sms, int expected) {
        assertThat(CudaPrefill.tileTokens(tokens, rows, sms)).isEqualTo(expected);
    }
}
