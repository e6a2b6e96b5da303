package aether.llm.cli;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.gguf.GgufFile;
import aether.llm.gguf.TensorInfo;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class SynthCommandTest {

    @TempDir
    Path dir;

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        CommandLine cli = new CommandLine(new SynthCommand());
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        return cli.execute(args);
    }

    private String vocab() {
        return SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf").toString();
    }

    @Test
    void shouldWriteAFileWhoseTensorBytesMatchWhatItAnnounced() throws IOException {
        Path file = dir.resolve("m.gguf");
        int code = run("--vocab", vocab(), "-o", file.toString(), "--type", "Q8_0", "--layers", "1", "--dim", "128",
                "--ffn", "256", "--heads", "2", "--kv-heads", "1", "--threads", "2");
        assertThat(code).as(err.toString()).isZero();
        assertThat(out.toString()).contains("wrote " + file).contains("Q8_0");
        try (GgufFile gguf = GgufFile.open(file)) {
            long tensorBytes = gguf.tensors().stream().mapToLong(TensorInfo::sizeBytes).sum();
            assertThat(out.toString()).contains("(%,d of tensor data)".formatted(tensorBytes));
            assertThat(gguf.metadata().requireInt("llama.embedding_length")).isEqualTo(128);
            assertThat(Files.size(file)).isEqualTo(gguf.dataStart() + gguf.dataSection().byteSize());
        }
        assertThat(dir.resolve("m.gguf.partial")).doesNotExist();
    }

    @Test
    void shouldRefuseToOverwriteWithoutForceAndRejectBadArgumentsInOneLine() throws IOException {
        Path file = Files.writeString(dir.resolve("exists.gguf"), "keep me");
        assertThat(run("--vocab", vocab(), "-o", file.toString())).isEqualTo(2);
        assertThat(Files.readString(file)).isEqualTo("keep me");
        assertThat(err.toString()).startsWith("aether synth: ").contains("--force");

        for (String[] bad : new String[][] {
                {"--type", "Q9_9"}, {"--preset", "70b"}, {"--heads", "3"}, {"--type", "IQ2_XXS"}}) {
            err.getBuffer().setLength(0);
            String[] args = new String[bad.length + 4];
            System.arraycopy(new String[] {"--vocab", vocab(), "-o", dir.resolve("x.gguf").toString()}, 0, args, 0, 4);
            System.arraycopy(bad, 0, args, 4, bad.length);
            assertThat(run(args)).as(String.join(" ", bad)).isEqualTo(2);
            assertThat(err.toString().lines()).as(err.toString()).hasSize(1);
            assertThat(err.toString()).startsWith("aether synth: ").doesNotContain("Exception");
        }
        assertThat(dir.resolve("x.gguf")).doesNotExist();
    }
}
