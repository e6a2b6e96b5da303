package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** How many warps share a GEMV row (no GPU needed: the choice is host arithmetic). */
class GemvSplitTest {

    @ParameterizedTest(name = "{0} rows of {1} units on {2} SMs -> {3}")
    @CsvSource({
        "14336, 128, 132, 1",   // 8B gate/up: plenty of rows
        "4096, 128, 132, 2",    // 8B q/o: 4096 warps < 32 per SM
        "1024, 128, 132, 4",    // 8B k/v: capped by the row's 128 blocks (each lane keeps one)
        "2048, 64, 132, 2",     // 1B q/o at K=2048
        "256, 64, 132, 2",      // short rows cap the split
        "77, 448, 132, 8",      // few long rows: the whole block on one row
        "77, 448, 1, 1",        // one SM: 77 warps already fill it
        "300, 40, 132, 1"})     // fewer than 64 units: no lane would be left without work only at split 1
    void splitsSmallMatricesUntilTheGridFillsTheChip(int rows, int units, int sms, int expected) {
        assertThat(CudaKernels.gemvSplit(rows, units, sms)).isEqualTo(expected);
    }
}
