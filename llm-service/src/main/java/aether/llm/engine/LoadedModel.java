package aether.llm.engine;

import aether.llm.arch.Architecture;
import aether.llm.chat.ChatTemplate;
import aether.llm.gguf.GgufFile;
import aether.llm.tokenizer.Tokenizer;
import aether.runtime.bench.StartupTrace;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A GGUF model opened for inference: its tokenizer, its chat template (if the file has one) and the {@link
 * InferenceModel} that runs it (a {@link PagedInferenceModel}: paged KV cache, compiled step graphs). Closing it closes the model and the file.
 */
public record LoadedModel(Path path, GgufFile file, Tokenizer tokenizer, Optional<ChatTemplate> chatTemplate,
        InferenceModel model) implements AutoCloseable {

    /**
     * Opens {@code path}: reads the metadata, builds the tokenizer and template, looks up every tensor.
     *
     * @throws UncheckedIOException                   when the file cannot be read
     * @throws aether.llm.gguf.GgufFormatException    when it is not a valid GGUF file
     * @throws aether.llm.model.ModelLoadException    when the architecture or a tensor is missing or unsupported
     */
    public static LoadedModel open(Path path, EngineOptions options) {
        GgufFile file;
        try {
            file = GgufFile.open(path);
            StartupTrace.mark("gguf opened");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read model " + path + ": " + e.getMessage(), e);
        }
        try {
            Architecture architecture = Architecture.load(file);
            StartupTrace.mark("architecture loaded");
            Tokenizer tokenizer = Tokenizer.fromGguf(file.metadata());
            StartupTrace.mark("tokenizer built");
            Optional<ChatTemplate> template = ChatTemplate.fromGguf(file.metadata());
            int context = options.contextSize() == 0 ? architecture.config().contextLength()
                    : Math.min(options.contextSize(), architecture.config().contextLength());
            int blocks = (int) Math.min(Integer.MAX_VALUE / PagedInferenceModel.BLOCK_POSITIONS,
                    (long) options.maxSequences() * ((context + PagedInferenceModel.BLOCK_POSITIONS - 1)
                            / PagedInferenceModel.BLOCK_POSITIONS));
            InferenceModel model = PagedInferenceModel.open(architecture, options, context, blocks, file::close);
            StartupTrace.mark("engine opened");
            return new LoadedModel(path, file, tokenizer, template, model);
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }

    @Override
    public void close() {
        model.close();
        file.close();
    }
}
