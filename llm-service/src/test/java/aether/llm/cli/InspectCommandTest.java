package aether.llm.cli;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class InspectCommandTest {

    @TempDir
    Path temp;

    record Run(int exitCode, String out, String err) {}

    static Run inspect(String... args) {
        var out = new StringWriter();
        var err = new StringWriter();
        var cli = new CommandLine(new InspectCommand()).setOut(new PrintWriter(out)).setErr(new PrintWriter(err));
        int code = cli.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    private static List<Path> modelAndVocabFiles() throws IOException {
        try (Stream<Path> vocab = Files.list(SharedData.require("models/vocab"))) {
            return Stream.concat(Stream.of(SharedData.require("models/stories260K.gguf")),
                    vocab.filter(p -> p.toString().endsWith(".gguf")).sorted()).toList();
        }
    }

    @TestFactory
    List<DynamicTest> shouldSummarizeEachFileAsItsRawBytesSay() throws IOException {
        return modelAndVocabFiles().stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
            RawGguf raw = RawGguf.read(p);
            Run run = inspect(p.toString());
            assertThat(run.exitCode()).as(run.err()).isZero();
            assertThat(run.err()).isEmpty();
            String arch = (String) raw.scalars().get("general.architecture");
            assertThat(run.out()).contains("  architecture    " + arch + "\n");
            long vocab = raw.arrayLengths().get("tokenizer.ggml.tokens");
            assertThat(run.out()).contains("  tokenizer       %s, %,d tokens\n".formatted(raw.scalars().get("tokenizer.ggml.model"), vocab));
            Object layers = raw.scalars().get(arch + ".block_count");
            assertThat(run.out()).contains("  layers          " + (layers == null ? "-" : layers) + "\n");
            Object template = raw.scalars().get("tokenizer.chat_template");
            assertThat(run.out()).contains(template == null ? "chat template   none"
                    : "chat template   present (%,d chars)".formatted(((String) template).length()));
            if (raw.scalars().get("tokenizer.ggml.bos_token_id") instanceof Long bos && bos < vocab) {
                String text = raw.stringArrays().get("tokenizer.ggml.tokens").get(bos.intValue());
                assertThat(run.out()).contains("bos " + bos + " \"" + text.replace("\n", "\\n") + "\"");
            }

            Run json = inspect("--json", p.toString());
            assertThat(json.exitCode()).isZero();
            JsonNode doc = new ObjectMapper().readTree(json.out());
            assertThat(doc.get("architecture").asText()).isEqualTo(arch);
            assertThat(doc.get("tokenizer").get("vocabSize").asLong()).isEqualTo(vocab);
            assertThat(doc.get("tensorCount").asInt()).isEqualTo(raw.tensorNames().size());
        })).toList();
    }

    @Test
    void shouldReportStories260KHyperparameters() throws IOException {
        Path p = SharedData.require("models/stories260K.gguf");
        RawGguf raw = RawGguf.read(p);
        Run run = inspect("--json", "--tensors", "--metadata", p.toString());
        JsonNode doc = new ObjectMapper().readTree(run.out());
        assertThat(doc.get("blockCount").asInt()).isEqualTo(5);
        assertThat(doc.get("headCount").asLong()).isEqualTo(raw.scalars().get("llama.attention.head_count"));
        assertThat(doc.get("headCountKv").asLong()).isEqualTo(raw.scalars().get("llama.attention.head_count_kv"));
        assertThat(doc.get("embeddingLength").asLong()).isEqualTo(raw.scalars().get("llama.embedding_length"));
        assertThat(doc.get("headDim").asLong()).isEqualTo((Long) raw.scalars().get("llama.embedding_length")
                / (Long) raw.scalars().get("llama.attention.head_count"));
        assertThat(doc.get("tensors")).hasSize(raw.tensorNames().size());
        assertThat(doc.get("tensors").get(0).get("name").asText()).isEqualTo(raw.tensorNames().get(0));
        long params = 0;
        for (JsonNode t : doc.get("tensors")) {
            long n = 1;
            for (JsonNode d : t.get("shape")) {
                n *= d.asLong();
            }
            params += n;
        }
        assertThat(doc.get("parameterCount").asLong()).isEqualTo(params);
        assertThat(doc.get("metadata").get("tokenizer.ggml.tokens").get("value").get("length").asLong()).isEqualTo(512);
        assertThat(doc.get("metadata").get("llama.block_count").get("type").asText()).isEqualTo("UINT32");
        assertThat(doc.get("metadata").get("llama.block_count").get("value").asLong()).isEqualTo(5);
        assertThat(doc.get("metadata").get("tokenizer.ggml.tokens").get("value").get("first").get(1).asText())
                .isEqualTo(raw.stringArrays().get("tokenizer.ggml.tokens").get(1));
    }

    @Test
    void shouldListTensorsAndAbbreviatedMetadataAsText() throws IOException {
        Path p = SharedData.require("models/stories260K.gguf");
        RawGguf raw = RawGguf.read(p);
        Run run = inspect("--tensors", "--metadata", p.toString());
        for (String name : raw.tensorNames()) {
            assertThat(run.out()).containsPattern("\n  " + name.replace(".", "\\.") + " +F32 ");
        }
        for (String key : raw.scalars().keySet()) {
            assertThat(run.out()).contains("\n  " + key + " ");
        }
        List<String> tokens = raw.stringArrays().get("tokenizer.ggml.tokens");
        assertThat(run.out()).contains("[512 strings: \"%s\", \"%s\", \"%s\", …]".formatted(tokens.get(0), tokens.get(1), tokens.get(2)));
    }

    @Test
    void shouldPrintTheSha256OfTheDataSection() throws Exception {
        Path p = SharedData.require("models/stories260K.gguf");
        byte[] all = Files.readAllBytes(p);
        long dataStart = RawGguf.read(p).dataStart();
        String expected = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                .digest(Arrays.copyOfRange(all, (int) dataStart, all.length)));
        Run run = inspect("--verify", p.toString());
        assertThat(run.out()).contains("data sha256     " + expected);
    }

    @Test
    void shouldFailWithOneLineAndExitCode2OnACorruptFile() throws IOException {
        byte[] bytes = Files.readAllBytes(SharedData.require("models/stories260K.gguf"));
        Path corrupt = temp.resolve("corrupt.gguf");
        Files.write(corrupt, Arrays.copyOf(bytes, bytes.length - 1000));
        Run run = inspect(corrupt.toString());
        assertThat(run.exitCode()).isEqualTo(2);
        assertThat(run.out()).isEmpty();
        assertThat(run.err().lines().toList()).hasSize(1);
        assertThat(run.err()).startsWith("aether inspect: corrupt.gguf @ ").contains("only").doesNotContain("Exception");

        Run debug = inspect("--debug", corrupt.toString());
        assertThat(debug.exitCode()).isEqualTo(2);
        assertThat(debug.err()).contains("GgufFormatException", "\tat ");
    }

    @Test
    void shouldFailWithOneLineOnAMissingFileOrADirectory() {
        Run missing = inspect(temp.resolve("nope.gguf").toString());
        assertThat(missing.exitCode()).isEqualTo(2);
        assertThat(missing.err()).isEqualTo("aether inspect: " + temp.resolve("nope.gguf") + ": no such file" + System.lineSeparator());
        Run dir = inspect(temp.toString());
        assertThat(dir.exitCode()).isEqualTo(2);
        assertThat(dir.err().lines().toList()).hasSize(1);
        assertThat(dir.err()).contains("is a directory");
    }

    @Test
    void shouldRejectANonGgufFile() throws IOException {
        Path text = temp.resolve("notes.txt");
        Files.writeString(text, "hello, world");
        Run run = inspect(text.toString());
        assertThat(run.exitCode()).isEqualTo(2);
        assertThat(run.err()).isEqualTo("aether inspect: notes.txt @ 0: header.magic: expected \"GGUF\" (47 47 55 46), "
                + "found \"hell\" (68 65 6c 6c)" + System.lineSeparator());
    }
}
