package aether.llm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import aether.llm.arch.Architecture;
import aether.llm.gguf.GgufFile;
import aether.llm.model.ModelConfig;
import aether.llm.gguf.TensorInfo;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code bench} on the bundled stories260K, with a small bandwidth buffer to keep the test short. */
@Timeout(180)
class BenchCommandTest {

    private static CliHarness bench(String... args) {
        return CliHarness.run(new BenchCommand(), args);
    }

    @Test
    void shouldReportPositiveRatesBandwidthAndTheRooflineFractionAsJson() throws IOException {
        CliHarness h = bench("-p", "16", "-n", "8", "-r", "2", "--json", "--bandwidth-mib", "32", "--threads", "1");
        assertThat(h.exitCode).as(h.err()).isZero();
        JsonNode json = new ObjectMapper().readTree(h.out());
        assertThat(json.get("promptTokens").asInt()).isEqualTo(16);
        assertThat(json.get("genTokens").asInt()).isEqualTo(8);
        assertThat(json.get("repetitions").asInt()).isEqualTo(2);
        assertThat(json.get("threads").asInt()).isEqualTo(1);
        for (String test : new String[] {"prompt", "decode"}) {
            JsonNode t = json.get(test);
            assertThat(t.get("samples")).hasSize(2);
            double mean = (t.get("samples").get(0).asDouble() + t.get("samples").get(1).asDouble()) / 2;
            assertThat(t.get("tokensPerSecond").asDouble()).isPositive().isCloseTo(mean, within(1e-9 * mean));
            assertThat(t.get("sd").asDouble()).isGreaterThanOrEqualTo(0);
        }
        double bandwidth = json.get("memoryBandwidthGBs").asDouble();
        assertThat(bandwidth).isPositive();
        long expectedWeights;
        try (GgufFile f = GgufFile.open(BundledModel.locate())) {
            long embedding = f.tensors().stream().filter(t -> t.name().equals("token_embd.weight"))
                    .mapToLong(TensorInfo::sizeBytes).sum();
            long all = f.tensors().stream().mapToLong(TensorInfo::sizeBytes).sum();
            expectedWeights = all - embedding + embedding / 512;   // stories260K has its own output.weight
            assertThat(json.get("modelBytes").asLong()).isEqualTo(Files.size(BundledModel.locate()));
        }
        assertThat(json.get("weightBytesPerToken").asLong()).isEqualTo(expectedWeights);
        double decode = json.get("decode").get("tokensPerSecond").asDouble();
        assertThat(json.get("rooflineFraction").asDouble()).isPositive()
                .isCloseTo(expectedWeights * decode / (bandwidth * 1e9), within(1e-12));
        assertThat(json.get("engine").asText()).isNotBlank();

        JsonNode memory = json.get("memory");
        try (GgufFile f = GgufFile.open(BundledModel.locate())) {
            ModelConfig c = Architecture.load(f).config();
            long positions = (c.contextLength() + 15) / 16 * 16L;   // one sequence of whole 16-position blocks
            long f16 = 2;
            assertThat(memory.get("kvCacheBytes").asLong())
                    .isEqualTo(positions * c.blockCount() * f16 * (c.keyWidth() + c.valueWidth()));
            assertThat(memory.get("modelFileBytes").asLong()).isEqualTo(Files.size(BundledModel.locate()));
            assertThat(memory.get("budgetBytes").asLong()).isEqualTo(memory.get("modelFileBytes").asLong()
                    + memory.get("kvCacheBytes").asLong() + (300L << 20));
        }
        if (Files.exists(java.nio.file.Path.of("/proc/self/status"))) {
            for (String at : new String[] {"afterOpen", "afterFirstToken", "atEnd"}) {
                JsonNode m = memory.get(at);
                assertThat(m.get("rssBytes").asLong()).as(at).isPositive()
                        .isLessThanOrEqualTo(m.get("peakRssBytes").asLong())
                        .isGreaterThanOrEqualTo(m.get("fileBytes").asLong() + m.get("anonBytes").asLong());
                assertThat(m.get("fileBytes").asLong()).as(at).isPositive();   // at least the mapped model's pages
            }
            assertThat(memory.get("withinBudget").asBoolean())
                    .isEqualTo(memory.get("atEnd").get("peakRssBytes").asLong() <= memory.get("budgetBytes").asLong());
        }
        JsonNode startup = json.get("startup");
        double open = startup.get("openMillis").asDouble();
        double first = startup.get("firstTokenMillis").asDouble();
        assertThat(open).isPositive();
        assertThat(first).isPositive();
        assertThat(startup.get("loadToFirstTokenMillis").asLong()).isEqualTo(Math.round(open + first));
        assertThat(startup.get("jvmToCommandMillis").asLong()).isNotNegative();
        // the process started before the model opened: its figure covers the open and the first token at least
        assertThat(startup.get("processToFirstTokenMillis").asLong())
                .isGreaterThanOrEqualTo(Math.round(open + first) - 1);
    }

    @Test
    void shouldTakeTheProcessStartFromTheLaunchersClockWhenItGivesOne() {
        // bash's EPOCHREALTIME without its decimal point: microseconds
        assertThat(BenchCommand.launchMillis("1796653300466651")).contains(1796653300466L);
        assertThat(BenchCommand.launchMillis(" 1796653300466651 ")).contains(1796653300466L);
        // not the launcher's (absent, empty, an unexpanded or localized value): the kernel's figure is used instead
        assertThat(BenchCommand.launchMillis(null)).isEmpty();
        assertThat(BenchCommand.launchMillis("")).isEmpty();
        assertThat(BenchCommand.launchMillis("1796653300,466651")).isEmpty();
        assertThat(BenchCommand.launchMillis("0")).isEmpty();

        long kernels = ProcessHandle.current().info().startInstant().map(java.time.Instant::toEpochMilli).orElse(-1L);
        String before = System.getProperty("aether.launch.epochMicros");
        try {
            System.clearProperty("aether.launch.epochMicros");
            assertThat(BenchCommand.processStartMillis()).isEqualTo(kernels);
            System.setProperty("aether.launch.epochMicros", "1796653300466651");
            assertThat(BenchCommand.processStartMillis()).isEqualTo(1796653300466L);
        } finally {
            if (before == null) {
                System.clearProperty("aether.launch.epochMicros");
            } else {
                System.setProperty("aether.launch.epochMicros", before);
            }
        }
    }

    @Test
    void shouldPrintALlamaBenchStyleTable() {
        CliHarness h = bench("-p", "8", "-n", "4", "-r", "1", "--bandwidth-mib", "32", "--threads", "1");
        assertThat(h.exitCode).as(h.err()).isZero();
        assertThat(h.out()).containsPattern("\\| pp8 +\\| +[0-9.]+ ± 0.00 \\|")
                .containsPattern("\\| tg4 +\\| +[0-9.]+ ± 0.00 \\|")
                .contains("memory read bandwidth: ").containsPattern("roofline fraction [0-9]+\\.[0-9]{4}")
                .containsPattern("load to first token [0-9]+ ms \\((< 1 s|over 1 s)\\) \\(model open to first token\\);"
                        + " process start to first token [0-9]+ ms")
                .containsPattern("model file [0-9.]+ [KM]iB \\+ KV cache [0-9.]+ [KM]iB \\+ 300 MiB = ");
        CliHarness onlyPrompt = bench("-p", "8", "-n", "0", "-r", "1", "--bandwidth-mib", "32", "--json");
        assertThat(onlyPrompt.exitCode).as(onlyPrompt.err()).isZero();
        assertThat(onlyPrompt.out()).contains("\"prompt\"").doesNotContain("\"decode\"");
    }

    @Test
    void shouldRejectBadValuesInOneLine() {
        bench("-r", "0").assertBadInput("-r 0");
        bench("-p", "0", "-n", "0").assertBadInput("not both 0");
        bench("-p", "5000", "--bandwidth-mib", "32").assertBadInput("does not fit the context of 2048");
        bench("-p", "x").assertBadInput("-p");
    }
}
