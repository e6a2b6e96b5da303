package aether.llm.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.testing.SharedData;
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
 * Decoding llama.cpp's own ids (llamacpp-tests vectors, tokenized without special tokens) gives back the input text
 * for the SentencePiece and byte-level BPE vocabularies, and streaming those ids one at a time gives the same text in
 * chunks that never split a character.
 */
class TokenizerDecodeTest {

    private static final String SEPARATOR = "\n__ggml_vocab_test__\n";

    static Stream<Arguments> vectors() throws IOException {
        Path dir = SharedData.require("golden/tokenizer/llamacpp-tests");
        List<Arguments> cases = new ArrayList<>();
        for (String vocab : List.of("llama-spm", "phi-3", "gpt-2")) {
            String input = Files.readString(dir.resolve("ggml-vocab-" + vocab + ".gguf.inp"), StandardCharsets.UTF_8);
            List<String> texts = Arrays.asList(input.split(SEPARATOR, -1));
            List<String> outputs = Files.readAllLines(dir.resolve("ggml-vocab-" + vocab + ".gguf.out"),
                    StandardCharsets.UTF_8);
            for (int i = 0; i < outputs.size(); i++) {
                String line = outputs.get(i).trim();
                int[] ids = line.isEmpty() ? new int[0]
                        : Arrays.stream(line.split(" ")).mapToInt(Integer::parseInt).toArray();
                cases.add(Arguments.of(vocab + " #" + i, vocab, texts.get(i), ids));
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("vectors")
    void shouldDecodeLlamaCppIdsBackToTheText(String name, String vocab, String text, int[] ids) {
        assertThat(Vocabs.get(vocab).decode(ids)).as(name).isEqualTo(text);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("vectors")
    void shouldStreamWholeCharactersThatConcatenateToTheText(String name, String vocab, String text, int[] ids) {
        StreamingDecoder decoder = Vocabs.get(vocab).streamingDecoder();
        StringBuilder all = new StringBuilder();
        for (int id : ids) {
            String chunk = decoder.accept(id);
            assertThat(StreamingDecoderProperties.isWellFormed(chunk)).as("%s chunk %s", name, chunk).isTrue();
            assertThat(chunk).as(name).doesNotContain("\uFFFD");
            all.append(chunk);
        }
        assertThat(decoder.flush()).isEmpty();
        assertThat(all.toString()).as(name).isEqualTo(text);
    }
}
