package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.device.cuda.CudaKernels.AttentionShape;
import aether.device.cuda.CudaPrefill.FlashLaunch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The launch arithmetic of the flash prefill attention (no GPU needed): which head sizes take it, its grid (KV heads x
 * tiles of 64 (token, query head) rows), its dynamic shared memory, and that these constants are those of {@code
 * flash_attn.cuh}.
 */
class FlashLaunchTest {

    private static AttentionShape shape(int heads, int kvHeads, int dim) {
        return new AttentionShape(heads, kvHeads, dim, dim, 8192, 500000f, 1f, false);
    }

    @ParameterizedTest(name = "H={0} Hkv={1} D={2}, {3} tokens, {4} warps")
    @CsvSource({
        // Llama 8B: 512 tokens x 4 heads per KV head = 2048 rows = 32 tiles of 64 (4 warps) or 16 of 128 (8 warps), per
        // each of 8 KV heads
        "32, 8, 128, 512, 4, 8, 32, 69632",
        "32, 8, 128, 512, 8, 8, 16, 69632",
        // the 1B synth preset (dim 2048 / 32 heads = 64)
        "32, 8, 64, 512, 4, 8, 32, 36864",
        "32, 8, 64, 512, 8, 8, 16, 36864",
        "32, 8, 128, 1, 4, 8, 1, 69632",       // one token: 4 rows in one tile
        "32, 8, 128, 17, 4, 8, 2, 69632",      // 68 rows: a second, short tile
        "32, 8, 128, 17, 8, 8, 1, 69632",      // 68 rows in one tile of 128
        "8, 2, 64, 37, 4, 2, 3, 36864",        // 148 rows
        "8, 2, 64, 37, 8, 2, 2, 36864",
        "6, 2, 64, 50, 4, 2, 3, 36864",        // groups of 3 heads: 150 rows
        "4, 4, 128, 64, 4, 4, 1, 69632",       // no GQA: one row per token
        "64, 1, 128, 100, 4, 1, 100, 69632",   // 64 heads per KV head: one tile per token
        "64, 1, 128, 100, 8, 1, 50, 69632",
    })
    void gridAndSharedMemory(int heads, int kvHeads, int dim, int tokens, int warps, int gridX, int gridY,
            int shared) {
        FlashLaunch f = FlashLaunch.plan(shape(heads, kvHeads, dim), tokens, warps).orElseThrow();
        String name = "attn_prefill_flash_d" + dim + (warps == 8 ? "_w8" : "");
        assertThat(f).isEqualTo(new FlashLaunch(name, gridX, gridY, 32 * warps, shared));
        // every (token, head) row is in exactly one tile, and the last tile is not empty
        long rows = (long) tokens * heads / kvHeads, blockRows = 16L * warps;
        assertThat(f.gridY() * blockRows).isGreaterThanOrEqualTo(rows);
        assertThat((f.gridY() - 1) * blockRows).isLessThan(rows);
    }

    @Test
    void sharedMemoryFitsTwoBlocksPerSmOnA100AndH100() {
        for (int d : FlashLaunch.HEAD_SIZES) {
            int bytes = FlashLaunch.sharedBytes(d);
            assertThat(bytes).as("D=%d", d).isEqualTo(2 * 2 * 64 * (d + 8) * 2);
            assertThat(2 * (bytes + 1024)).as("two blocks of D=%d on an A100 (164 KiB usable)", d)
                    .isLessThanOrEqualTo(164 * 1024);
        }
        assertThat(FlashLaunch.sharedBytes(128)).as("D=128 needs the raised limit").isGreaterThan(48 * 1024);
    }

    @ParameterizedTest
    @CsvSource({"32", "96", "160", "256"})
    void otherHeadSizesKeepTheWarpKernel(int dim) {
        assertThat(FlashLaunch.plan(shape(8, 2, dim), 100, 4)).isEmpty();
        assertThat(FlashLaunch.plan(shape(8, 2, dim), 100, 8)).isEmpty();
    }

    @Test
    void tooManyRowsForTheGridIsRefusedWithTheCounts() {
        // 65535 tokens x 128 heads per KV head = 131,070 tiles: past the grid's y limit
        assertThatThrownBy(() -> FlashLaunch.plan(shape(128, 1, 64), 65535, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("65535 tokens")
                .hasMessageContaining("128 query heads per KV head");
        assertThat(FlashLaunch.plan(shape(32, 8, 64), 65535, 4)).isPresent();  // 4,096 tiles
        assertThat(FlashLaunch.plan(shape(128, 1, 64), 65535, 8)).isPresent();  // 65,535 tiles of 128 rows: fits
    }

    @Test
    void warpCountsOtherThanFourAndEightAreRefused() {
        assertThatThrownBy(() -> FlashLaunch.plan(shape(32, 8, 128), 10, 2))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2 warps (expected 4 or 8)");
        assertThatThrownBy(() -> FlashLaunch.warps("16")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("aether.cuda.flashWarps=16 (expected 4 or 8)");
        assertThat(FlashLaunch.warps(" 8 ")).isEqualTo(8);
        assertThat(FlashLaunch.warps("4")).isEqualTo(4);
    }

    /** The Java constants must be the kernel's: FA_BN, the FLASH_KERNEL instances, the static_asserts on SMEM. */
    @Test
    void constantsMatchTheKernelSource() throws IOException {
        String src = Files.readString(Path.of("src/main/cuda/flash_attn.cuh"));
        assertThat(define(src, "FA_BN")).isEqualTo(FlashLaunch.POSITIONS);
        for (int d : FlashLaunch.HEAD_SIZES) {
            for (int w : FlashLaunch.WARPS) {
                assertThat(src).contains("FLASH_KERNEL(" + FlashLaunch.kernel(d, w) + ", " + d + ", " + w + ")");
                Matcher m = Pattern.compile("FaTile<" + d + ", " + w + ">::SMEM == (\\d+)").matcher(src);
                assertThat(m.find()).as("static_assert on FaTile<%d, %d>::SMEM", d, w).isTrue();
                assertThat(Integer.parseInt(m.group(1))).as("D=%d", d).isEqualTo(FlashLaunch.sharedBytes(d));
            }
        }
    }

    private static int define(String src, String name) {
        Matcher m = Pattern.compile("#define " + name + " (\\d+)").matcher(src);
        assertThat(m.find()).as("#define %s", name).isTrue();
        return Integer.parseInt(m.group(1));
    }

    @Test
    void flashIsTheDefaultUnlessSwitchedOff() {
        // the surefire JVM sets no aether.cuda.flashPrefill or flashWarps: flash on, 4 warps a block
        assertThat(System.getProperty("aether.cuda.flashPrefill")).isNull();
        assertThat(CudaPrefill.FLASH_PREFILL).isTrue();
        assertThat(CudaPrefill.FLASH_WARPS).isEqualTo(4);
    }
}
