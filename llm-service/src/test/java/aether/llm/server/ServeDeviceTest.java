package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.device.cuda.CudaDriver;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.LoadedModel;
import aether.llm.model.ModelLoadException;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;

/** {@code serve --device}: which engine each choice opens, and the one line that says so (fake probe and engines). */
class ServeDeviceTest {

    static final Path MODEL = Path.of("m.gguf");
    static final CudaDriver.Availability GPU = new CudaDriver.Availability(true, 1, "");
    static final CudaDriver.Availability NO_GPU = new CudaDriver.Availability(false, 0, "libcuda.so.1 not found");

    final List<String> opened = new ArrayList<>();

    /** An engine that records its name and opens nothing (the choice is what is tested). */
    BiFunction<Path, EngineOptions, LoadedModel> engine(String name) {
        return (p, o) -> {
            opened.add(name);
            return null;
        };
    }

    BiFunction<Path, EngineOptions, LoadedModel> failing(RuntimeException e) {
        return (p, o) -> {
            opened.add("cuda");
            throw e;
        };
    }

    ServeDevice.Opened open(String device, CudaDriver.Availability a, BiFunction<Path, EngineOptions, LoadedModel> cuda,
            EngineOptions options) {
        return ServeDevice.open(device, MODEL, options, () -> a, engine("cpu"), cuda);
    }

    @Test
    void autoTakesTheGpuWhenTheDriverFindsOne() {
        var o = open("auto", GPU, engine("cuda"), EngineOptions.DEFAULTS);
        assertThat(opened).containsExactly("cuda");
        assertThat(o.device()).isEqualTo("cuda");
        assertThat(o.line()).isEqualTo("device cuda (--device auto: CUDA available: 1 device(s))");
    }

    @Test
    void autoFallsBackToTheCpuSayingWhy() {
        var o = open("auto", NO_GPU, engine("cuda"), EngineOptions.DEFAULTS);
        assertThat(opened).containsExactly("cpu");
        assertThat(o.device()).isEqualTo("cpu");
        assertThat(o.line()).isEqualTo("device cpu (--device auto: CUDA unavailable: libcuda.so.1 not found)");

        opened.clear();
        o = open("auto", GPU, failing(new ModelLoadException("gemma2", "the CUDA engine runs llama-architecture models "
                + "only (this increment); use --device cpu")), EngineOptions.DEFAULTS);
        assertThat(opened).containsExactly("cuda", "cpu");
        assertThat(o.device()).isEqualTo("cpu");
        assertThat(o.line()).startsWith("device cpu (--device auto: the CUDA engine cannot run this model: ")
                .contains("llama-architecture models only");

        opened.clear();
        o = open("auto", GPU, failing(new aether.device.cuda.CudaException("cuCtxCreate: CUDA_ERROR_DEVICE_BUSY", 46)),
                EngineOptions.DEFAULTS);
        assertThat(opened).containsExactly("cuda", "cpu");
        assertThat(o.line()).startsWith("device cpu (--device auto: GPU 0 failed: cuCtxCreate: CUDA_ERROR_DEVICE_BUSY");

        opened.clear();
        o = open("auto", GPU, engine("cuda"), EngineOptions.DEFAULTS.withKvType("q8_0"));
        assertThat(opened).containsExactly("cpu");
        assertThat(o.line()).contains("f16 KV cache, not q8_0");
    }

    @Test
    void anExplicitDeviceIsTakenOrFailsWithTheEngineError() {
        assertThat(open("cpu", GPU, engine("cuda"), EngineOptions.DEFAULTS).line())
                .isEqualTo("device cpu (--device cpu)");
        assertThat(opened).containsExactly("cpu");
        assertThatThrownBy(() -> open("cuda", NO_GPU, failing(new IllegalArgumentException(
                "--device cuda: CUDA unavailable: libcuda.so.1 not found")), EngineOptions.DEFAULTS))
                .hasMessage("--device cuda: CUDA unavailable: libcuda.so.1 not found");
        assertThat(opened).containsExactly("cpu", "cuda");   // no fallback for an explicit choice
        assertThatThrownBy(() -> open("gpu", GPU, engine("cuda"), EngineOptions.DEFAULTS))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("device: gpu (expected one of [cpu, cuda, auto])");
    }

    @Test
    void settingsReadTheDeviceFromTheConfigurationAndCheckIt() {
        var base = ConfigFactory.load();
        assertThat(ServeSettings.fromConfig(base).device()).isEqualTo("auto");
        var cuda = ConfigFactory.parseString("aether.serve.device = CUDA").withFallback(base).resolve();
        assertThat(ServeSettings.fromConfig(cuda).device()).isEqualTo("cuda");
        assertThat(ServeSettings.fromConfig(base).withDevice("cpu").device()).isEqualTo("cpu");
        assertThatThrownBy(() -> ServeSettings.fromConfig(base).withDevice("tpu"))
                .hasMessage("device: tpu (expected one of [cpu, cuda, auto])");
    }

    @Test
    void settingsReadTheGpuLayersAndRefuseLayersOnTheGpuForDeviceCpu() {
        var base = ConfigFactory.load();
        assertThat(ServeSettings.fromConfig(base).gpuLayers()).isEqualTo(-1);
        var split = ConfigFactory.parseString("aether.serve.gpu-layers = 12").withFallback(base).resolve();
        assertThat(ServeSettings.fromConfig(split).gpuLayers()).isEqualTo(12);
        assertThat(ServeSettings.fromConfig(base).withGpuLayers(0).withDevice("cpu").gpuLayers()).isZero();
        assertThatThrownBy(() -> ServeSettings.fromConfig(base).withGpuLayers(-2))
                .hasMessage("gpu-layers: -2 (expected -1 = every layer on the GPU, 0 = none, or a layer count)");
        assertThatThrownBy(() -> ServeSettings.fromConfig(base).withDevice("cpu").withGpuLayers(8))
                .hasMessage("gpu-layers: 8 puts layers on the GPU, but device cpu runs the model on the CPU only "
                        + "(use device cuda or auto, or gpu-layers 0)");
    }

    @Test
    void gpuLayersZeroServesFromTheCpuEngineWithoutAskingForAGpu() {
        var path = aether.runtime.testing.SharedData.require("models/stories260K.gguf");
        var o = ServeDevice.open("cuda", path, EngineOptions.DEFAULTS, 0);
        try (var model = o.model()) {
            assertThat(o.device()).isEqualTo("cpu");
            assertThat(o.line()).isEqualTo("device cpu (--gpu-layers 0)");
            assertThat(model.model().config().blockCount()).isPositive();
        }
    }
}
