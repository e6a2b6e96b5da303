package aether.llm.gguf;

import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** The real GGUF files in shared/: stories260K, the 12 vocab-only files and the llama.cpp golden models. */
final class RealGgufFiles {

    private RealGgufFiles() {}

    static Path stories260K() {
        return SharedData.require("models/stories260K.gguf");
    }

    static List<Path> vocabFiles() {
        return list(SharedData.require("models/vocab"));
    }

    static List<Path> all() {
        var out = new ArrayList<Path>();
        out.add(stories260K());
        out.addAll(vocabFiles());
        out.addAll(list(SharedData.require("golden/forward/models")));
        out.addAll(list(SharedData.require("golden/quant/models")));
        return out;
    }

    private static List<Path> list(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".gguf")).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
