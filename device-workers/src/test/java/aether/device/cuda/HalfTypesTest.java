package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The host side of the 16-bit float weight types (F16, BF16) on the GPU, without a GPU: which launcher takes which
 * type, the kernel names they launch (each must be a kernel of the CUDA sources, or the launch fails only on a GPU
 * machine), the GEMV's work units, the range check's grid, and the upload's refusals (checked before any device call).
 */
class HalfTypesTest {

    private static final Path SOURCES = Path.of("src/main/cuda");

    @Test
    void bf16RunsOnEveryPathF16Does() {
        for (GgmlType t : List.of(GgmlType.F16, GgmlType.BF16)) {
            assertThat(GpuMatrix.supports(t)).as("%s matrices upload", t).isTrue();
            assertThat(GpuMatrix.isHalf(t)).as("%s is a 16-bit float", t).isTrue();
            assertThat(GpuMatrix.repacked(t)).as("%s is kept as stored", t).isFalse();
            assertThat(CudaRowKernels.supports(t)).as("%s in the batched decode", t).isTrue();
            assertThat(CudaPrefill.supports(t)).as("%s in the GEMM prefill", t).isTrue();
        }
        for (GgmlType t : List.of(GgmlType.F32, GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K,
                GgmlType.Q5_K)) {
            assertThat(GpuMatrix.isHalf(t)).as("%s", t).isFalse();
        }
    }

    @ParameterizedTest
    @CsvSource({"gemv, F16, gemv_f16", "gemv, BF16, gemv_bf16", "gemv_batch, BF16, gemv_batch_bf16",
            "gemv_rows, BF16, gemv_rows_bf16", "get_row, BF16, get_row_bf16", "get_row, F16, get_row_f16"})
    void halfKernelNames(String base, GgmlType type, String expected) {
        assertThat(CudaKernels.halfKernel(base, type)).isEqualTo(expected);
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "Q8_0", "Q4_K"})
    void halfKernelRefusesOtherTypes(GgmlType type) {
        assertThatThrownBy(() -> CudaKernels.halfKernel("gemv", type)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(type.name()).hasMessageContaining("F16 or BF16");
    }

    @ParameterizedTest
    @CsvSource({"BF16, 2048, 256", "F16, 8192, 1024", "Q4_0, 2048, 64", "Q8_0, 14336, 448", "Q6_K, 4096, 128"})
    void gemvUnitsAreSixteenBytePiecesForHalvesAndBlocksOtherwise(GgmlType type, int cols, int units) {
        assertThat(CudaKernels.gemvUnits(type, cols)).isEqualTo(units);
    }

    /**
     * A BF16 row of 2048 columns is 256 units of 8 (not 64 blocks of 32): on a 132-SM H100 the 1B k/v matrix (512
     * rows) gets 8 warps a row, where 64 units would cap it at 2.
     */
    @ParameterizedTest
    @CsvSource({"512, 8", "2048, 4", "8192, 1", "128256, 1"})
    void theBf16DecodeGemvSplitsByItsUnits(int rows, int split) {
        assertThat(CudaKernels.gemvSplit(rows, CudaKernels.gemvUnits(GgmlType.BF16, 2048), 132)).isEqualTo(split);
    }

    @ParameterizedTest
    @CsvSource({"1, 132, 1", "8, 132, 1", "2048, 132, 1", "2056, 132, 2", "20480, 132, 10", "4194304, 132, 1056",
            "4194304, 1, 8", "262668288, 132, 1056"})
    void rangeCheckGridFillsTheChipAndNoMore(long n, int sms, int blocks) {
        assertThat(CudaPrefill.rangeCheckBlocks(n, sms)).isEqualTo(blocks);
    }

    @Test
    void gemmKernelNamesCoverBf16() {
        assertThat(CudaPrefill.gemmKernel(GgmlType.BF16, 64)).isEqualTo("gemm_bf16_64");
        assertThat(CudaPrefill.KERNELS).contains("gemm_bf16_32", "gemm_bf16_64", "gemm_bf16_128", "bf16_beyond_f16");
    }

    @Test
    void uploadRefusesABf16ShapeTheKernelsCannotRead() {
        MemorySegment raw = Arena.ofAuto().allocate(GgmlType.BF16.bytesFor(4 * 12));
        assertThatThrownBy(() -> GpuMatrix.upload(null, GgmlType.BF16, 4, 12, raw, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("4 x 12 BF16")
                .hasMessageContaining("multiple of 8 elements for F16 and BF16");
        MemorySegment small = Arena.ofAuto().allocate(100);
        assertThatThrownBy(() -> GpuMatrix.upload(null, GgmlType.BF16, 4, 16, small, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("takes 128 bytes, got 100");
        assertThatThrownBy(() -> GpuMatrix.upload(null, GgmlType.Q5_K, 4, 256, small, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("Q5_K")
                .hasMessageContaining("BF16");
    }

    /** Every kernel a launcher preloads or names for a 16-bit float type is a __global__ of the CUDA sources. */
    @Test
    void everyLaunchedKernelExistsInTheSources() throws IOException {
        Set<String> defined = new HashSet<>();
        try (Stream<Path> files = Files.list(SOURCES)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".cu") || p.toString().endsWith(".cuh")).toList()) {
                String src = PdlEntryTest.withoutComments(Files.readString(f));
                Matcher m = PdlEntryTest.KERNEL.matcher(src);
                while (m.find()) {
                    defined.add(m.group(1));
                }
                // the GEMM and flash attention kernels are defined through macros: GEMM_KERNEL(name, TYPE, BN),
                // FLASH_KERNEL(name, D, WARPS)
                Matcher g = java.util.regex.Pattern.compile("^(?:GEMM|FLASH)_KERNEL\\((\\w+),",
                        java.util.regex.Pattern.MULTILINE)
                        .matcher(src);
                while (g.find()) {
                    defined.add(g.group(1));
                }
                // the fused decode GEMVs too: FUSED_GEMV_KERNELS(suffix, T, blocks) defines gemv_<suffix>_norm,
                // _swiglu and _rope
                Matcher fused = java.util.regex.Pattern.compile("^FUSED_GEMV_KERNELS\\((\\w+),",
                        java.util.regex.Pattern.MULTILINE).matcher(src);
                while (fused.find()) {
                    for (String kind : List.of("norm", "swiglu", "rope")) {
                        defined.add("gemv_" + fused.group(1) + "_" + kind);
                    }
                }
            }
        }
        List<String> launched = new ArrayList<>();
        launched.addAll(Arrays.asList(CudaKernels.KERNELS));
        launched.addAll(Arrays.asList(CudaRowKernels.KERNELS));
        launched.addAll(Arrays.asList(CudaPrefill.KERNELS));
        for (GgmlType t : List.of(GgmlType.F16, GgmlType.BF16)) {
            for (String base : List.of("gemv", "gemv_batch", "gemv_rows", "get_row")) {
                launched.add(CudaKernels.halfKernel(base, t));
            }
        }
        assertThat(defined).as("kernels found in %s", SOURCES.toAbsolutePath()).hasSizeGreaterThan(40);
        assertThat(launched).allSatisfy(k -> assertThat(defined).as("kernel %s", k).contains(k));
    }
}
