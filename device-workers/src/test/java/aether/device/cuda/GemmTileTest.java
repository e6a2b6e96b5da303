package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Tokens per block of the prefill GEMM (no GPU needed: the choice is host arithmetic, measured on an H100). */
class GemmTileTest {

    @ParameterizedTest(name = "{0} tokens x {1} rows on {2} SMs -> {3}")
    @CsvSource({
        "1, 4096, 132, 32",       // a short prompt: the smallest tile
        "32, 28672, 132, 32",
        "33, 28672, 132, 64",     // past 32 tokens, up to 64: one tile of 64
        "512, 28672, 132, 128",   // 8B gate|up: 224 row tiles x 4 = 896 blocks
        "512, 4096, 132, 128",    // 8B o/down: 128 blocks on 132 SMs, still faster than 256 of 64 tokens
        "65, 6144, 132, 128",     // past 64 tokens the large tile
        "64, 6144, 132, 64"})
    void largestTileTheTokensFill(int tokens, int rows, int sms, int expected) {
        assertThat(CudaPrefill.tileTokens(tokens, rows, sms)).isEqualTo(expected);
    }
}
