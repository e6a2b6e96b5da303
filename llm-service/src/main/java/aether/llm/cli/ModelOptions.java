package aether.llm.cli;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.cuda.CudaModels;
import aether.llm.engine.cuda.GpuLayers;
import aether.llm.engine.cuda.HybridInferenceModel;
import aether.llm.gguf.ModelSummary;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The options of every command that loads a model for inference: which file, and how the engine opens it. */
public final class ModelOptions {

    @Option(names = {"-m", "--model"}, paramLabel = "GGUF",
            description = "the model file; default: the bundled " + BundledModel.RELATIVE_PATH + " (TinyStories 260K, MIT)")
    Path model;

    @Option(names = {"-c", "--ctx"}, paramLabel = "N", defaultValue = "0",
            description = "context size in tokens; 0 = the model's (default: ${DEFAULT-VALUE})")
    int contextSize;

    @Option(names = {"-b", "--batch"}, paramLabel = "N", defaultValue = "512",
            description = "prompt tokens per prefill step (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", defaultValue = "0",
            description = "compute threads; 0 = one per core (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--kv-type", paramLabel = "TYPE", defaultValue = "f16",
            description = "KV cache type: f16, q8_0 or f32 (default: ${DEFAULT-VALUE})")
    String kvType;

    @Option(names = "--device", paramLabel = "DEVICE",
            description = "where the model runs: cpu, or cuda (GPU 0; llama models with Q4_0/Q8_0/Q4_K/Q6_K/F16/BF16 "
                    + "weights) (default: cpu, or cuda with --gpu-layers)")
    String device;

    @Option(names = {"-ngl", "--gpu-layers"}, paramLabel = "N",
            description = "layers on GPU 0, counted from the last (llama.cpp's -ngl): the CPU runs the embeddings and "
                    + "the first n-N layers, the GPU the last N with the output norm and head; -1 or N >= the "
                    + "model's layers = all on the GPU (as --device cuda), 0 = all on the CPU (default: all with "
                    + "--device cuda, none otherwise)")
    Integer gpuLayers;

    @Option(names = "--debug", description = "print the stack trace of a failure")
    boolean debug;

    /** The model path: {@code -m}, or the bundled model. */
    Path path() {
        return model != null ? model : BundledModel.locate();
    }

    /** Shows that a slow load is alive: after the first second, the elapsed seconds on one redrawn line. */
    private static void tick(PrintWriter err) {
        long seconds = 0;
        try {
            while (true) {
                Thread.sleep(1000);
                err.printf("\raether: loading ... %d s", ++seconds);
                err.flush();
            }
        } catch (InterruptedException e) {
            if (seconds > 0) {
                err.println();
                err.flush();
            }
        }
    }

    /** True for {@code --device cuda}, or {@code --gpu-layers} without {@code --device}; checks the values. */
    boolean cuda() {
        boolean cuda = switch (device == null ? (gpuLayers != null ? "cuda" : "cpu") : device) {
            case "cpu" -> false;
            case "cuda" -> true;
            default -> throw new IllegalArgumentException("--device " + device + " (expected cpu or cuda)");
        };
        GpuLayers split = gpuLayers();
        if (!cuda && split != null && !split.none()) {
            throw new IllegalArgumentException("--gpu-layers " + split + " puts layers on the GPU, but --device cpu "
                    + "runs the model on the CPU only (drop --device cpu, or use --gpu-layers 0)");
        }
        return cuda;
    }

    /** {@code --gpu-layers}, checked; null when not given. */
    GpuLayers gpuLayers() {
        return gpuLayers == null ? null : new GpuLayers(gpuLayers);
    }

    EngineOptions engineOptions(int sequences) {
        cuda();
        return new EngineOptions(contextSize, sequences, batchSize, threads, kvType);
    }

    /**
     * Checks the options and the file, then opens the model, reporting on {@code err} what is loaded and how long it
     * took.
     *
     * @throws IllegalArgumentException for bad option values
     * @throws UncheckedIOException     when the file is missing, a directory or unreadable
     */
    LoadedModel open(int sequences, PrintWriter err) {
        EngineOptions options = engineOptions(sequences);
        Path path = path();
        if (!Files.exists(path)) {
            throw new UncheckedIOException(new NoSuchFileException(path.toString()));
        }
        if (Files.isDirectory(path)) {
            throw new IllegalArgumentException(path + ": is a directory, expected a .gguf file");
        }
        if (!Files.isReadable(path)) {
            throw new UncheckedIOException(new java.nio.file.AccessDeniedException(path.toString()));
        }
        long size;
        try {
            size = Files.size(path);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        err.printf("aether: loading %s (%s)%n", path, ModelSummary.humanBytes(size));
        err.flush();
        long t0 = System.nanoTime();
        LoadedModel loaded;
        Thread ticker = Thread.ofVirtual().start(() -> tick(err));
        try {
            loaded = !cuda() ? LoadedModel.open(path, options)
                    : gpuLayers() == null ? CudaModels.open(path, options) : CudaModels.open(path, options, gpuLayers());
        } finally {
            ticker.interrupt();
            try {
                ticker.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        err.printf("aether: loaded in %.0f ms: %s, %d layers, vocab %,d, context %,d%s%n", (System.nanoTime() - t0) / 1e6,
                loaded.model().config().architecture(), loaded.model().config().blockCount(),
                loaded.model().config().vocabSize(), loaded.model().contextSize(),
                loaded.model() instanceof HybridInferenceModel h ? "; layers 0.." + (h.gpuPart().firstLayer() - 1)
                        + " on the CPU, " + h.gpuPart().firstLayer() + ".." + (h.config().blockCount() - 1)
                        + " and the head on " + h.gpuPart().deviceName() : "");
        err.flush();
        return loaded;
    }
}
