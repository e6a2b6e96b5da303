package aether.llm.tokenizer;

import aether.llm.gguf.GgufFile;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Tokenizers of the vocab-only GGUF files in shared/models/vocab, loaded once per test run. */
final class Vocabs {

    private static final Map<String, Tokenizer> CACHE = new ConcurrentHashMap<>();

    private Vocabs() {}

    /** The tokenizer of {@code ggml-vocab-<name>.gguf}. */
    static Tokenizer get(String name) {
        return load(SharedData.require("models/vocab/ggml-vocab-" + name + ".gguf"));
    }

    static Tokenizer load(Path path) {
        return CACHE.computeIfAbsent(path.toAbsolutePath().normalize().toString(), p -> {
            try (GgufFile file = GgufFile.open(Path.of(p))) {
                return Tokenizer.fromGguf(file.metadata());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }
}
