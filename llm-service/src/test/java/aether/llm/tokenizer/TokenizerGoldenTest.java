package aether.llm.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every record of every golden file in shared/golden/tokenizer (llama-tokenize output, see the golden README) and
 * every vector of llama.cpp's own tokenizer tests (llamacpp-tests/*.inp|out): the ids must be identical.
 */
class TokenizerGoldenTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SEPARATOR = "\n__ggml_vocab_test__\n";

    static Stream<Arguments> goldenRecords() throws IOException {
        Path index = SharedData.require("golden/tokenizer/index.json");
        JsonNode files = JSON.readTree(index.toFile()).get("files");
        List<Arguments> cases = new ArrayList<>();
        for (JsonNode entry : files) {
            Path vocab = index.getParent().getParent().getParent().getParent().resolve(entry.get("vocab").asText());
            List<String> lines = Files.readAllLines(index.resolveSibling(entry.get("file").asText()),
                    StandardCharsets.UTF_8);
            assertThat(lines).as(entry.get("file").asText()).hasSize(entry.get("n_records").asInt());
            for (int i = 0; i < lines.size(); i++) {
                JsonNode r = JSON.readTree(lines.get(i));
                int[] ids = new int[r.get("ids").size()];
                for (int k = 0; k < ids.length; k++) {
                    ids[k] = r.get("ids").get(k).asInt();
                }
                String name = "%s #%d %s add_special=%s parse_special=%s".formatted(
                        vocab.getFileName(), i, r.get("category").asText(), r.get("add_special").asBoolean(),
                        r.get("parse_special").asBoolean());
                cases.add(Arguments.of(name, vocab, r.get("text").asText(), r.get("add_special").asBoolean(),
                        r.get("parse_special").asBoolean(), ids));
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("goldenRecords")
    void shouldTokenizeExactlyAsLlamaCpp(String name, Path vocab, String text, boolean addSpecial,
            boolean parseSpecial, int[] expected) {
        Tokenizer tokenizer = Vocabs.load(vocab);
        assertThat(tokenizer.encode(text, addSpecial, parseSpecial)).as(name).containsExactly(expected);
    }

    static Stream<Arguments> llamaCppVectors() throws IOException {
        Path dir = SharedData.require("golden/tokenizer/llamacpp-tests");
        List<Arguments> cases = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path inp : files.filter(p -> p.toString().endsWith(".gguf.inp")).sorted().toList()) {
                String file = inp.getFileName().toString();
                String vocabName = file.substring("ggml-vocab-".length(), file.length() - ".gguf.inp".length());
                String input = Files.readString(inp, StandardCharsets.UTF_8);
                List<String> texts = new ArrayList<>(Arrays.asList(input.split(SEPARATOR, -1)));
                assertThat(texts.removeLast()).as("text after the last separator of " + file).isEmpty();
                List<String> outputs = Files.readAllLines(dir.resolve(file.replace(".inp", ".out")),
                        StandardCharsets.UTF_8);
                assertThat(outputs).as(file).hasSameSizeAs(texts);
                for (int i = 0; i < texts.size(); i++) {
                    String line = outputs.get(i).trim();
                    int[] ids = line.isEmpty() ? new int[0]
                            : Arrays.stream(line.split(" ")).mapToInt(Integer::parseInt).toArray();
                    cases.add(Arguments.of(vocabName + " #" + i, vocabName, texts.get(i), ids));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("llamaCppVectors")
    void shouldMatchLlamaCppTokenizerTests(String name, String vocab, String text, int[] expected) {
        assertThat(Vocabs.get(vocab).encode(text, false, false)).as(name).containsExactly(expected);
    }
}
