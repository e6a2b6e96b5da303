package aether.llm.server;

import aether.device.cuda.CudaDriver;
import aether.device.cuda.CudaException;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.cuda.CudaModels;
import aether.llm.engine.cuda.GpuLayers;
import aether.llm.model.ModelLoadException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.BiFunction;
import java.util.function.Supplier;

/**
 * Where {@code serve} runs its model: {@code cpu}, {@code cuda} (GPU 0; fails when CUDA is unusable or the CUDA engine
 * cannot run the model), or {@code auto}: CUDA when the driver finds a usable GPU and the CUDA engine takes the model,
 * else the CPU. {@link #open} says in one line which it chose and why. On the GPU, {@code --gpu-layers N} puts only the
 * last N layers there (a split model, the rest on the CPU); 0 runs the CPU engine alone.
 */
final class ServeDevice {

    static final List<String> NAMES = List.of("cpu", "cuda", "auto");

    /** A model opened on a device, and the line that says which and why. */
    record Opened(LoadedModel model, String device, String line) {}

    private ServeDevice() {}

    /** Opens {@code path} as {@code device} asks, with the real CPU and CUDA engines and the driver's availability. */
    static Opened open(String device, Path path, EngineOptions options, int gpuLayers) {
        if (gpuLayers == 0 && !device.equals("cpu")) {
            return new Opened(LoadedModel.open(path, options), "cpu", "device cpu (--gpu-layers 0)");
        }
        GpuLayers layers = new GpuLayers(gpuLayers);
        return open(device, path, options, CudaDriver::availability, LoadedModel::open,
                gpuLayers == -1 ? CudaModels::open : (p, o) -> CudaModels.open(p, o, layers));
    }

    /** {@link #open(String, Path, EngineOptions)} with the probe and the two engines given (for tests). */
    static Opened open(String device, Path path, EngineOptions options, Supplier<CudaDriver.Availability> probe,
            BiFunction<Path, EngineOptions, LoadedModel> cpu, BiFunction<Path, EngineOptions, LoadedModel> cuda) {
        return switch (device) {
            case "cpu" -> new Opened(cpu.apply(path, options), "cpu", "device cpu (--device cpu)");
            case "cuda" -> new Opened(cuda.apply(path, options), "cuda", "device cuda (--device cuda)");
            case "auto" -> {
                CudaDriver.Availability a = probe.get();
                if (!a.available()) {
                    yield new Opened(cpu.apply(path, options), "cpu", "device cpu (--device auto: CUDA "
                            + a.describe() + ")");
                }
                if (!options.kvType().equals("f16")) {
                    yield new Opened(cpu.apply(path, options), "cpu", "device cpu (--device auto: the CUDA engine "
                            + "keeps an f16 KV cache, not " + options.kvType() + ")");
                }
                try {
                    yield new Opened(cuda.apply(path, options), "cuda", "device cuda (--device auto: CUDA "
                            + a.describe() + ")");
                } catch (ModelLoadException | IllegalArgumentException e) {
                    // a model the CUDA engine does not run (architecture, tensor type, too little GPU memory)
                    yield new Opened(cpu.apply(path, options), "cpu", "device cpu (--device auto: the CUDA engine "
                            + "cannot run this model: " + e.getMessage() + ")");
                } catch (CudaException e) {
                    // a device the driver lists but that fails to open or load (busy in exclusive mode, a driver error)
                    yield new Opened(cpu.apply(path, options), "cpu", "device cpu (--device auto: GPU 0 failed: "
                            + e.getMessage() + ")");
                }
            }
            default -> throw new IllegalArgumentException("device: " + device + " (expected one of " + NAMES + ")");
        };
    }
}
