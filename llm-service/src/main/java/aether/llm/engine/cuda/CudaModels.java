package aether.llm.engine.cuda;

import aether.device.cuda.CudaContext;
import aether.device.cuda.CudaDevice;
import aether.device.cuda.CudaDriver;
import aether.device.cuda.CudaException;
import aether.llm.arch.Architecture;
import aether.llm.arch.LayerRange;
import aether.llm.chat.ChatTemplate;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.PagedInferenceModel;
import aether.llm.gguf.GgufFile;
import aether.llm.model.ModelConfig;
import aether.llm.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Opens a GGUF model for inference on CUDA device 0, as {@link LoadedModel#open} does for the CPU: all of it, or
 * split between the CPU and the GPU ({@link GpuLayers}, {@code --gpu-layers}).
 */
public final class CudaModels {

    private CudaModels() {}

    /**
     * Opens {@code path} with {@code gpuLayers} of its layers on GPU 0: none → the CPU engine ({@link LoadedModel#open},
     * no GPU needed), all → {@link #open(Path, EngineOptions)}, some → a {@link HybridInferenceModel}.
     *
     * @throws IllegalArgumentException when layers are asked for on the GPU and CUDA is unavailable on this host (the
     *                                  message says why and names {@code --device cpu}), or for an option the GPU
     *                                  engine does not take
     */
    public static LoadedModel open(Path path, EngineOptions options, GpuLayers gpuLayers) {
        if (gpuLayers.none()) {
            return LoadedModel.open(path, options);
        }
        requireCuda(options, "--gpu-layers", why -> "--gpu-layers " + gpuLayers + " needs a CUDA GPU: CUDA " + why
                + "; run on the CPU with --device cpu (or --gpu-layers 0)");
        GgufFile file = openFile(path);
        int layers;
        try {
            layers = ModelConfig.read(file).blockCount();
        } finally {
            file.close();
        }
        int first = gpuLayers.firstGpuLayer(layers);
        return first == 0 ? open(path, options) : openSplit(path, options, first);
    }

    /** Layers {@code [0, first)} on the CPU engine, {@code [first, n)} with the head on GPU 0. */
    private static LoadedModel openSplit(Path path, EngineOptions options, int first) {
        GgufFile file;
        try {
            file = GgufFile.open(path);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read model " + path + ": " + e.getMessage(), e);
        }
        CudaDevice device = null;
        PagedInferenceModel cpu = null;
        CudaInferenceModel gpu = null;
        try {
            Architecture architecture = Architecture.load(file);
            ModelConfig config = architecture.config();
            Tokenizer tokenizer = Tokenizer.fromGguf(file.metadata());
            Optional<ChatTemplate> template = ChatTemplate.fromGguf(file.metadata());
            int context = options.contextSize() == 0 ? config.contextLength()
                    : Math.min(options.contextSize(), config.contextLength());
            int blocks = (int) Math.min(Integer.MAX_VALUE / PagedInferenceModel.BLOCK_POSITIONS,
                    (long) options.maxSequences() * ((context + PagedInferenceModel.BLOCK_POSITIONS - 1)
                            / PagedInferenceModel.BLOCK_POSITIONS));
            device = CudaDevice.open(0);
            cpu = PagedInferenceModel.open(architecture, new LayerRange(0, first, config.blockCount()), options,
                    context, blocks, () -> {});
            gpu = CudaInferenceModel.loadLayers(device.context(), file, first, context,
                    options.maxSequences(), () -> {});
            return new LoadedModel(path, file, tokenizer, template,
                    new HybridInferenceModel(cpu, gpu, device, file::close));
        } catch (RuntimeException e) {
            if (gpu != null) {
                gpu.close();
            }
            if (cpu != null) {
                cpu.close();
            }
            if (device != null) {
                try {
                    device.close();
                } catch (RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            file.close();
            throw e;
        }
    }

    /**
     * Opens {@code path} on the GPU: the tokenizer and template as on the CPU, the weights uploaded to the device.
     *
     * @throws IllegalArgumentException when CUDA is unavailable on this host (the message says why, in one line)
     */
    public static LoadedModel open(Path path, EngineOptions options) {
        requireCuda(options, "--device cuda", why -> "--device cuda: CUDA " + why);
        GgufFile file = openFile(path);
        CudaContext cuda = null;
        try {
            ModelConfig config = ModelConfig.read(file);
            Tokenizer tokenizer = Tokenizer.fromGguf(file.metadata());
            Optional<ChatTemplate> template = ChatTemplate.fromGguf(file.metadata());
            int context = options.contextSize() == 0 ? config.contextLength()
                    : Math.min(options.contextSize(), config.contextLength());
            cuda = CudaContext.open(0);
            CudaContext owned = cuda;
            CudaInferenceModel model = CudaInferenceModel.load(cuda, file, context, options.maxSequences(), () -> {
                owned.close();
                file.close();
            });
            releaseHostPages(file);
            return new LoadedModel(path, file, tokenizer, template, model);
        } catch (RuntimeException e) {
            if (cuda != null) {
                try {
                    cuda.close();
                } catch (CudaException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            file.close();
            throw e;
        }
    }

    /**
     * Drops the file's pages from this process's resident set once every weight is on the device (the mapping stays;
     * a later read faults pages back in). Reading the weights to upload them made the whole file resident: an 8B Q4_0
     * model kept 3.9 GiB of host memory it no longer reads (bench on an H100, 2026-12-07). A hint; where the segment
     * is not a mapping, nothing happens.
     */
    private static void releaseHostPages(GgufFile file) {
        MemorySegment contents = file.contents();
        if (contents.isMapped()) {
            contents.unload();
        }
    }

    /**
     * Checks that the driver finds a usable GPU and that the options fit the CUDA engine (an f16 KV cache).
     *
     * @param option      the option that asked for the GPU, as the messages name it
     * @param unavailable the message when CUDA is unusable, given the driver probe's reason
     */
    private static void requireCuda(EngineOptions options, String option,
            java.util.function.UnaryOperator<String> unavailable) {
        CudaDriver.Availability a = CudaDriver.availability();
        if (!a.available()) {
            throw new IllegalArgumentException(unavailable.apply(a.describe()));
        }
        if (!options.kvType().equals("f16")) {
            throw new IllegalArgumentException("--kv-type " + options.kvType() + " with " + option + " (the CUDA "
                    + "engine keeps an f16 cache; expected f16)");
        }
    }

    private static GgufFile openFile(Path path) {
        try {
            return GgufFile.open(path);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read model " + path + ": " + e.getMessage(), e);
        }
    }
}
