package aether.llm.engine.cuda;

import aether.device.cuda.CudaContext;
import aether.device.cuda.CudaDriver;
import aether.device.cuda.CudaException;
import aether.llm.chat.ChatTemplate;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.LoadedModel;
import aether.llm.gguf.GgufFile;
import aether.llm.model.ModelConfig;
import aether.llm.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Optional;

/** Opens a GGUF model for inference on CUDA device 0, as {@link LoadedModel#open} does for the CPU. */
public final class CudaModels {

    private CudaModels() {}

    /**
     * Opens {@code path} on the GPU: the tokenizer and template as on the CPU, the weights uploaded to the device.
     *
     * @throws IllegalArgumentException when CUDA is unavailable on this host (the message says why, in one line)
     */
    public static LoadedModel open(Path path, EngineOptions options) {
        CudaDriver.Availability a = CudaDriver.availability();
        if (!a.available()) {
            throw new IllegalArgumentException("--device cuda: CUDA " + a.describe());
        }
        if (!options.kvType().equals("f16")) {
            throw new IllegalArgumentException("--kv-type " + options.kvType() + " with --device cuda (the CUDA engine "
                    + "keeps an f16 cache; expected f16)");
        }
        GgufFile file;
        try {
            file = GgufFile.open(path);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read model " + path + ": " + e.getMessage(), e);
        }
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
}
