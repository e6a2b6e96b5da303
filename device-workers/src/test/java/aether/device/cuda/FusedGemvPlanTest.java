package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.device.cuda.CudaKernels.AttentionShape;
import aether.device.cuda.CudaKernels.FusionCounters;
import aether.runtime.tensor.GgmlType;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Which matrices and shapes the fused decode GEMVs take, and their counters' size check (no GPU: the matrices here
 * hold no device memory, and the check comes before any allocation).
 */
class FusedGemvPlanTest {

    private static GpuMatrix matrix(GgmlType type) {
        return new GpuMatrix(type, 64, 256, null, null, 0);
    }

    @Test
    void oneMatrixOfAGemvTypeIsFusableAStackedOneIsNot() {
        for (GgmlType t : List.of(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_K, GgmlType.Q6_K)) {
            assertThat(CudaKernels.fusable(matrix(t))).as("%s", t).isTrue();
        }
        assertThat(CudaKernels.fusable(matrix(GgmlType.F32))).isFalse();
        GpuMatrix mixed = GpuMatrix.stacked(List.of(matrix(GgmlType.Q4_K), matrix(GgmlType.Q6_K)));
        assertThat(CudaKernels.fusable(mixed)).as("q|k|v of Q4_K and Q6_K parts").isFalse();
    }

    @Test
    void ropeFusesHeadsUpToOneBlocksThreads() {
        assertThat(CudaKernels.ropeFusable(new AttentionShape(32, 8, 128, 128, 512, 1e4f, 1f, false))).isTrue();
        assertThat(CudaKernels.ropeFusable(new AttentionShape(2, 1, 256, 256, 512, 1e4f, 1f, false))).isTrue();
        assertThat(CudaKernels.ropeFusable(new AttentionShape(2, 1, 512, 128, 512, 1e4f, 1f, false))).isFalse();
    }

    @Test
    void counterSetsHoldAtLeastOneWord() {
        assertThatThrownBy(() -> FusionCounters.allocate(null, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("fusion counters of 0 words (expected 1+)");
    }
}
