package aether.device.cuda;

import static aether.device.cuda.GpuTests.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * {@code argmax_rows} ({@link CudaKernels#argmaxRows}) on crafted rows against the host's greedy choice (the first
 * largest value, strict {@code >}): ties across threads, warps and the block's stride, maxima at the first and last
 * index, -Infinity bans, and -1 for a row with NaN, +Infinity or only -Infinity, each row independent of the others.
 */
@Tag("gpu")
@Timeout(120)
class ArgmaxRowsKernelTest {

    @RegisterExtension
    static final GpuFixture gpu = new GpuFixture();

    /** The host reference: first index of the largest value, or -1 for NaN, +Infinity or all -Infinity. */
    static int reference(float[] x, int offset, int n) {
        int best = 0;
        for (int i = 0; i < n; i++) {
            float v = x[offset + i];
            if (Float.isNaN(v) || v == Float.POSITIVE_INFINITY) {
                return -1;
            }
            if (v > x[offset + best]) {
                best = i;
            }
        }
        return x[offset + best] == Float.NEGATIVE_INFINITY ? -1 : best;
    }

    private int[] run(float[] rows, int n) {
        int count = rows.length / n;
        CUdeviceptr x = gpu.upload(rows);
        CUdeviceptr out = gpu.alloc(count * 4L);
        gpu.cuda().fill32(out, 0x12345678, count);
        gpu.kernels().argmaxRows(x, count, n, out);
        int[] got = new int[count];
        gpu.cuda().download(out, got);
        return got;
    }

    @Test
    void craftedRowsMatchTheHostsFirstLargestOrAreFlagged() {
        SplittableRandom r = random();
        int n = 32_000 + 7;   // not a multiple of the block: the last stride is partial
        int count = 24;
        float[] rows = new float[count * n];
        for (int row = 0; row < count; row++) {
            int o = row * n;
            for (int i = 0; i < n; i++) {
                rows[o + i] = (float) (r.nextGaussian() * 3);
            }
            switch (row) {
                case 0 -> rows[o] = 50f;                                    // the first index
                case 1 -> rows[o + n - 1] = 50f;                            // the last index
                case 2 -> { rows[o + 5] = 50f; rows[o + 6] = 50f; }        // tie inside a warp
                case 3 -> { rows[o + 1029] = 50f; rows[o + 5] = 50f; }     // same thread's stride: 5 wins
                case 4 -> { rows[o + 31_000] = 50f; rows[o + 700] = 50f; } // different warps: 700 wins
                case 5 -> java.util.Arrays.fill(rows, o, o + n, 1.5f);     // all equal: 0
                case 6 -> { java.util.Arrays.fill(rows, o, o + n, Float.NEGATIVE_INFINITY); rows[o + 9000] = -3f; }
                case 7 -> java.util.Arrays.fill(rows, o, o + n, Float.NEGATIVE_INFINITY);   // all banned: -1
                case 8 -> rows[o + r.nextInt(n)] = Float.NaN;               // -1
                case 9 -> rows[o + n - 1] = Float.POSITIVE_INFINITY;        // -1
                case 10 -> { rows[o + 3] = 50f; rows[o + 40] = Float.NaN; } // NaN loses no comparison: still -1
                case 11 -> { rows[o] = -0f; rows[o + 1] = 0f; for (int i = 2; i < n; i++) rows[o + i] = -1f; }
                default -> {
                    float top = 4f + r.nextInt(3);   // several random ties
                    for (int k = 0; k < 1 + r.nextInt(5); k++) {
                        rows[o + r.nextInt(n)] = top;
                    }
                    if (r.nextBoolean()) {
                        rows[o + r.nextInt(n)] = Float.NEGATIVE_INFINITY;
                    }
                }
            }
        }
        int[] got = run(rows, n);
        for (int row = 0; row < count; row++) {
            assertThat(got[row]).as("row %d", row).isEqualTo(reference(rows, row * n, n));
        }
        assertThat(got[0]).isZero();
        assertThat(got[1]).isEqualTo(n - 1);
        assertThat(got[3]).isEqualTo(5);
        assertThat(got[4]).isEqualTo(700);
        assertThat(got[7]).isEqualTo(-1);
        assertThat(got[10]).isEqualTo(-1);
        assertThat(got[11]).isZero();
    }

    @Test
    void aRowsResultDoesNotDependOnTheOtherRowsOrTheRowCount() {
        SplittableRandom r = random();
        int n = 1000, count = 65;   // a vocabulary below the block size: most threads see one value or none
        float[] rows = new float[count * n];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = r.nextInt(20);   // many ties
        }
        int[] all = run(rows, n);
        for (int row = 0; row < count; row += 16) {
            float[] one = java.util.Arrays.copyOfRange(rows, row * n, (row + 1) * n);
            assertThat(run(one, n)[0]).as("row %d alone", row).isEqualTo(all[row])
                    .isEqualTo(reference(rows, row * n, n));
        }
    }

    @Test
    void rejectsAnEmptyLaunch() {
        assertThatThrownBy(() -> gpu.kernels().argmaxRows(new CUdeviceptr(), 0, 10, new CUdeviceptr()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0 rows");
    }
}
