package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.device.cuda.CudaRowKernels.RowKernel;
import aether.runtime.tensor.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The MMQ row GEMM's split-K choice (host arithmetic, no GPU needed): a function of (type, M, K) only, enough blocks for
 * a 132-SM chip, at most one split per K tile, and within the partial-sum and arrival-counter buffers the kernels
 * allocate per row.
 */
class MmqSplitTest {

    @ParameterizedTest(name = "{0} {1} x {2} -> {3} splits")
    @CsvSource({
        "Q4_0, 28672, 4096, 1",    // 8B gate+up: 224 row blocks, enough
        "Q4_0, 4096, 14336, 8",    // 8B down: 32 row blocks x 8
        "Q4_0, 4096, 4096, 8",     // 8B o: 16 K tiles, 8 ranges of 2
        "Q4_0, 6144, 4096, 5",     // 8B q+k+v: 48 row blocks x 5
        "Q8_0, 4096, 4096, 8",     // Q8_0 tiles are 4 blocks: 32 of them
        "Q4_0, 77, 2080, 9",       // one row block: one split per K tile (65 blocks = 9 tiles, the last short)
        "Q8_0, 77, 2080, 17",      // 17 tiles of 4 blocks
        "Q4_0, 16896, 2080, 1",    // 132 row blocks: no split
        "Q4_0, 16768, 2080, 2"})   // 131 row blocks: 2
    void splitsKOnlyWhenTheRowBlocksDoNotFillTheChip(GgmlType type, int m, int k, int expected) {
        assertThat(CudaRowKernels.mmqSplits(type, m, k)).isEqualTo(expected);
    }

    @Test
    void splitSumsFitTheBufferAndEverySplitHasATile() {
        for (GgmlType type : new GgmlType[] {GgmlType.Q4_0, GgmlType.Q8_0}) {
            for (int m = 1; m <= 40_000; m += 37) {
                for (int k : new int[] {32, 96, 2080, 4096, 14336}) {
                    int splits = CudaRowKernels.mmqSplits(type, m, k);
                    int tiles = (k / 32 + (type == GgmlType.Q4_0 ? 7 : 3)) / (type == GgmlType.Q4_0 ? 8 : 4);
                    assertThat(splits).as("%s %d x %d", type, m, k).isBetween(1, tiles);
                    if (splits > 1) {
                        assertThat((long) splits * m).as("%s %d x %d: partial sums per row", type, m, k)
                                .isLessThanOrEqualTo(CudaRowKernels.MMQ_SPLIT_COLUMNS);
                        for (int capacity : new int[] {1, 64, 65, 1000}) {  // one arrival counter per output tile
                            long outputTiles = (long) ((m + 127) / 128) * ((capacity + 63) / 64);
                            assertThat(outputTiles).as("%s %d x %d, %d rows: counters", type, m, k, capacity)
                                    .isLessThanOrEqualTo(CudaRowKernels.splitCounterWords(capacity));
                            assertThat(CudaRowKernels.splitCounterWords(capacity) * Integer.BYTES)
                                    .isLessThanOrEqualTo(capacity * CudaRowKernels.splitSumBytesPerRow()
                                            - (long) capacity * CudaRowKernels.MMQ_SPLIT_COLUMNS * Float.BYTES);
                        }
                    }
                }
            }
        }
    }

    @Test
    void reduceChoiceParses() {
        assertThat(CudaRowKernels.fusedReduce("fused")).isTrue();
        assertThat(CudaRowKernels.fusedReduce(" Kernel ")).isFalse();
        assertThatThrownBy(() -> CudaRowKernels.fusedReduce("atomic")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("aether.cuda.mmqReduce=atomic").hasMessageContaining("fused or kernel");
    }

    @Test
    void rowKernelNamesParse() {
        assertThat(RowKernel.parse("mmq")).isEqualTo(RowKernel.MMQ);
        assertThat(RowKernel.parse(" DP4A ")).isEqualTo(RowKernel.DP4A);
        assertThat(RowKernel.parse("Mma")).isEqualTo(RowKernel.MMA);
        assertThatThrownBy(() -> RowKernel.parse("wmma")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("aether.cuda.rowsKernel=wmma").hasMessageContaining("mmq, mma or dp4a");
    }
}
