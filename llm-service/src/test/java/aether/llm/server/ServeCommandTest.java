package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Settings of {@code serve}: reference defaults, a --config file over them, options over both. */
class ServeCommandTest {

    static ServeSettings parse(String... args) {
        var cmd = new ServeCommand();
        new CommandLine(cmd).parseArgs(args);
        return cmd.settings();
    }

    @Test
    void shouldUseTheReferenceDefaults() {
        ServeSettings s = parse();
        assertThat(s.host()).isEqualTo("127.0.0.1");
        assertThat(s.parallel()).isEqualTo(4);
        assertThat(s.maxConcurrency()).as("defaults to --parallel").isEqualTo(4);
        assertThat(s.queue()).isEqualTo(64);
        assertThat(s.maxBodyBytes()).isEqualTo(1 << 20);
        assertThat(s.apiKeys()).isEmpty();
    }

    @Test
    void shouldLayerAConfigFileAndOptions(@TempDir Path dir) throws Exception {
        Path keys = dir.resolve("keys");
        Files.writeString(keys, "k1\n# comment\nk2\n");
        Path conf = dir.resolve("serve.conf");
        Files.writeString(conf, "aether.serve { port = 9999, queue = 3, parallel = 2, rate-limit = 30, "
                + "api-key-file = \"" + keys + "\", max-body-bytes = 64 KiB }");
        ServeSettings fromFile = parse("--config", conf.toString());
        assertThat(fromFile.port()).isEqualTo(9999);
        assertThat(fromFile.queue()).isEqualTo(3);
        assertThat(fromFile.maxConcurrency()).isEqualTo(2);
        assertThat(fromFile.rateLimit()).isEqualTo(30);
        assertThat(fromFile.apiKeys()).containsExactlyInAnyOrder("k1", "k2");
        assertThat(fromFile.maxBodyBytes()).isEqualTo(64 << 10);
        ServeSettings overridden = parse("--config", conf.toString(), "--port", "0", "--parallel", "6",
                "--max-concurrency", "3", "--rate-limit", "2/s", "--api-key", "only", "-m", "x.gguf", "--ctx", "128");
        assertThat(overridden.port()).isZero();
        assertThat(overridden.parallel()).isEqualTo(6);
        assertThat(overridden.maxConcurrency()).isEqualTo(3);
        assertThat(overridden.rateLimit()).isEqualTo(120);
        assertThat(overridden.apiKeys()).containsExactly("only");
        assertThat(overridden.model()).isEqualTo(Path.of("x.gguf"));
        assertThat(overridden.ctx()).isEqualTo(128);
        assertThat(parse("--parallel", "5").maxConcurrency()).isEqualTo(5);
    }

    @Test
    void shouldNameTheBadSetting(@TempDir Path dir) throws Exception {
        assertThatThrownBy(() -> parse("--rate-limit", "fast")).hasMessageContaining("--rate-limit 'fast'");
        assertThatThrownBy(() -> parse("--port", "70000")).hasMessageContaining("port: 70000");
        assertThatThrownBy(() -> parse("--max-concurrency", "0")).hasMessageContaining("max-concurrency: 0");
        assertThatThrownBy(() -> parse("--api-key-file", dir.resolve("none").toString()))
                .hasMessageContaining("api-key-file").hasMessageContaining("cannot read");
        Path conf = dir.resolve("bad.conf");
        Files.writeString(conf, "aether.serve.queue = lots");
        assertThatThrownBy(() -> parse("--config", conf.toString())).hasMessageContaining("queue");
        assertThatThrownBy(() -> parse("--config", dir.resolve("missing.conf").toString()))
                .hasMessageContaining("no such file");
    }

    @Test
    void shouldDefaultToTheBundledModel() {
        assertThat(InferenceServer.defaultModel()).isRegularFile().hasFileName("stories260K.gguf");
    }
}
