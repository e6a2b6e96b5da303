package aether.llm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import aether.device.cuda.CudaDriver;
import aether.llm.engine.cuda.GpuLayers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code --gpu-layers N} ({@code -ngl}) on run, chat and bench: its values, its conflicts with {@code --device}, and
 * what it says on a host without a GPU (this one, and CI). The split itself is tested on the CPU engine by {@code
 * LayerRangeStepTest} and on a GPU by {@code HybridInferenceModelTest}.
 */
@Timeout(120)
class GpuLayersOptionTest {

    private static void assumeNoGpu() {
        assumeFalse(CudaDriver.availability().available(), "this host has a GPU: the no-GPU messages do not apply");
    }

    @Test
    void countsLayersFromTheLastAsLlamaCppDoes() {
        assertThat(new GpuLayers(0).onGpu(32)).isZero();
        assertThat(new GpuLayers(0).firstGpuLayer(32)).isEqualTo(32);
        assertThat(new GpuLayers(0).none()).isTrue();
        assertThat(new GpuLayers(16).firstGpuLayer(32)).isEqualTo(16);
        assertThat(new GpuLayers(1).firstGpuLayer(32)).isEqualTo(31);
        assertThat(new GpuLayers(32).firstGpuLayer(32)).isZero();
        assertThat(new GpuLayers(99).onGpu(32)).as("-ngl 99: every layer").isEqualTo(32);
        assertThat(GpuLayers.ALL.onGpu(5)).isEqualTo(5);
        assertThat(GpuLayers.ALL.firstGpuLayer(5)).isZero();
        assertThatThrownBy(() -> new GpuLayers(-2))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("--gpu-layers -2 (expected -1 = every layer on the GPU, 0 = none (CPU only), or a number "
                        + "of layers to put on the GPU, counted from the last)");
    }

    @Test
    void aValueBelowMinusOneIsRefusedBeforeTheModelLoads() {
        for (Object command : new Object[] {new RunCommand(), new BenchCommand()}) {
            CliHarness h = CliHarness.run(command, "--gpu-layers", "-5", "-n", "1");
            h.assertBadInput("--gpu-layers -5 (expected -1 = every layer on the GPU");
            assertThat(h.err()).doesNotContain("aether: loading");
        }
        CliHarness chat = CliHarness.run(new ChatCommand(), "-ngl", "-3");
        chat.assertBadInput("--gpu-layers -3 (expected -1");
    }

    @Test
    void layersOnTheGpuConflictWithDeviceCpu() {
        CliHarness h = CliHarness.run(new RunCommand(), "--device", "cpu", "--gpu-layers", "2", "-n", "1");
        h.assertBadInput("--gpu-layers 2 puts layers on the GPU, but --device cpu runs the model on the CPU only");
        assertThat(h.err()).doesNotContain("aether: loading");
    }

    @Test
    void zeroGpuLayersRunsOnTheCpuWithoutAGpu() {
        CliHarness zero = CliHarness.run(new RunCommand(), "--gpu-layers", "0", "-p", "Once upon a time", "-n", "12",
                "--temp", "0", "--no-display-prompt");
        CliHarness cpu = CliHarness.run(new RunCommand(), "-p", "Once upon a time", "-n", "12", "--temp", "0",
                "--no-display-prompt");
        assertThat(zero.exitCode).as(zero.err()).isZero();
        assertThat(cpu.exitCode).as(cpu.err()).isZero();
        assertThat(zero.out()).isNotBlank().isEqualTo(cpu.out());
        CliHarness withDeviceCpu = CliHarness.run(new RunCommand(), "--device", "cpu", "-ngl", "0", "-p", "Once",
                "-n", "4", "--temp", "0");
        assertThat(withDeviceCpu.exitCode).as(withDeviceCpu.err()).isZero();
    }

    @Test
    void gpuLayersWithoutAGpuSaysWhyAndNamesDeviceCpu() {
        assumeNoGpu();
        for (String[] args : new String[][] {{"--gpu-layers", "3", "-n", "1"}, {"-ngl", "-1", "-n", "1"},
                {"--device", "cuda", "--gpu-layers", "99", "-n", "1"}}) {
            CliHarness h = CliHarness.run(new RunCommand(), args);
            h.assertBadInput("needs a CUDA GPU: CUDA unavailable");
            assertThat(h.err()).contains("run on the CPU with --device cpu (or --gpu-layers 0)");
        }
        CliHarness device = CliHarness.run(new RunCommand(), "--device", "cuda", "-n", "1");
        device.assertBadInput("--device cuda: CUDA unavailable");
        assertThat(device.err()).doesNotContain("--gpu-layers");
        CliHarness bench = CliHarness.run(new BenchCommand(), "--gpu-layers", "2", "-p", "8", "-n", "8", "-r", "1");
        bench.assertBadInput("--gpu-layers 2 needs a CUDA GPU");
        CliHarness chat = CliHarness.run(new ChatCommand(), "--gpu-layers", "2");
        chat.assertBadInput("--gpu-layers 2 needs a CUDA GPU");
    }

    @Test
    void helpDocumentsTheOption() {
        CliHarness h = CliHarness.run(new RunCommand(), "--help");
        assertThat(h.out()).contains("-ngl, --gpu-layers=N");
        assertThat(h.out().replaceAll("\\s+", " ")).contains("layers on GPU 0, counted from the last")
                .contains("(default: cpu, or cuda with --gpu-layers)");
    }
}
