package aether.llm.server;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.testing.SharedData;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class LoadTestCommandTest {

    @Test
    @Timeout(120)
    void shouldCountEveryGeneratedTokenAndReportOrderedPercentiles() throws Exception {
        var model = SharedData.require("models/stories260K.gguf");
        try (var server = InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, Set.of(), 4, 8, 0, 256, 4,
                64, 0, 1 << 20, 0, null, null))) {
            List<LoadTestCommand.Level> levels = LoadTestCommand.measure("http://127.0.0.1:" + server.port(),
                    new int[] {1, 4}, 6, 12);
            for (LoadTestCommand.Level l : levels) {
                assertThat(l.tokens()).isEqualTo(6 * 12);
                assertThat(l.tokensPerSecond()).isPositive();
                assertThat(l.ttftP50Ms()).isPositive().isLessThanOrEqualTo(l.ttftP99Ms());
                assertThat(l.itlP50Ms()).isPositive().isLessThanOrEqualTo(l.itlP99Ms());
            }
        }
    }

    @Test
    void shouldReadThePromptFileAsTokenIdsOrAsText(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        var cmd = new LoadTestCommand();
        cmd.promptFile = java.nio.file.Files.writeString(dir.resolve("ids.json"), " [1, 9038, 2501]\n");
        assertThat(cmd.promptNode(mapper).toString()).isEqualTo("[1,9038,2501]");
        cmd.promptFile = java.nio.file.Files.writeString(dir.resolve("text.txt"), "Once upon a time");
        assertThat(cmd.promptNode(mapper).textValue()).isEqualTo("Once upon a time");
        cmd.promptFile = java.nio.file.Files.writeString(dir.resolve("bad.json"), "[1, \"x\"]");
        assertThat(org.assertj.core.api.Assertions.catchThrowable(() -> cmd.promptNode(mapper)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("--prompt-file " + cmd.promptFile + " (expected text, or a non-empty JSON array of token ids)");
        cmd.promptFile = null;
        assertThat(cmd.promptNode(mapper).textValue()).isEqualTo(cmd.prompt);
    }

    @Test
    void shouldTakeTheNearestRankPercentile() {
        double[] v = {5, 1, 4, 2, 3};
        assertThat(LoadTestCommand.percentile(v, 50)).isEqualTo(3);
        assertThat(LoadTestCommand.percentile(v, 99)).isEqualTo(5);
        assertThat(LoadTestCommand.percentile(new double[0], 50)).isNaN();
    }

    @Test
    void shouldRefuseANonPositiveLevelWithOneLineAndExitCode2() {
        var err = new java.io.ByteArrayOutputStream();
        var old = System.err;
        System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            int code = new picocli.CommandLine(new LoadTestCommand()).execute("--url", "http://127.0.0.1:1", "-c", "0");
            assertThat(code).isEqualTo(2);
        } finally {
            System.setErr(old);
        }
        assertThat(err.toString(java.nio.charset.StandardCharsets.UTF_8))
                .isEqualTo("aether loadtest: --concurrency 0 (expected levels of 1+)" + System.lineSeparator());
    }

    @Test
    @Timeout(120)
    void shouldRefuseABadBudgetOrADeviceForARemoteServerAndSkipLevelsPastTheBudget() throws Exception {
        assertThat(refusal("--url", "http://127.0.0.1:1", "--budget-s", "-1"))
                .isEqualTo("aether loadtest: --budget-s -1 (expected 0+ seconds; 0 = no budget)");
        assertThat(refusal("--url", "http://127.0.0.1:1", "--device", "cuda")).isEqualTo("aether loadtest: --device "
                + "cuda with --url (it chooses the in-process server's device; a server at --url runs where it was "
                + "started)");
        // an in-process server on the CPU; the budget of 1 s is spent (by the clock below) before the second level
        var model = SharedData.require("models/stories260K.gguf");
        var out = new java.io.ByteArrayOutputStream();
        var err = new java.io.ByteArrayOutputStream();
        var oldOut = System.out;
        var oldErr = System.err;
        System.setOut(new java.io.PrintStream(out, true, java.nio.charset.StandardCharsets.UTF_8));
        System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
        int code;
        try {
            var cmd = new LoadTestCommand();
            // the budget's clock: 0 s at the start, 0.5 s before the first level, 5 s before the second
            var readings = new java.util.ArrayDeque<>(List.of(0L, 500_000_000L, 5_000_000_000L));
            cmd.budgetClock = readings::pop;
            code = new picocli.CommandLine(cmd).execute("-m", model.toString(), "--device", "cpu",
                    "--ctx", "128", "-c", "2,4", "--requests", "100", "-n", "8", "--budget-s", "1", "--warmup", "0");
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
        String e = err.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertThat(code).as(e).isZero();
        assertThat(e).contains("device cpu (--device cpu)").contains("loadtest: concurrency 4 skipped (5 s of the --budget-s 1 spent)");
        assertThat(out.toString(java.nio.charset.StandardCharsets.UTF_8)).contains("| 2 | 100 | 800 |")
                .doesNotContain("| 4 |");
    }

    private static String refusal(String... args) {
        var err = new java.io.ByteArrayOutputStream();
        var old = System.err;
        System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            assertThat(new picocli.CommandLine(new LoadTestCommand()).execute(args)).isEqualTo(2);
        } finally {
            System.setErr(old);
        }
        return err.toString(java.nio.charset.StandardCharsets.UTF_8).strip();
    }

    @Test
    void shouldKeepOnePrefixPerSlotOfTheHighestLevelUnlessTold() {
        var cmd = new LoadTestCommand();
        assertThat(cmd.inProcessSettings(8).prefixCache()).isEqualTo(8);
        assertThat(cmd.inProcessSettings(8).maxConcurrency()).isEqualTo(8);
        cmd.prefixCache = 0;
        assertThat(cmd.inProcessSettings(8).prefixCache()).isZero();
    }

    @Test
    void shouldRefuseANegativePrefixCacheWithOneLineAndExitCode2() {
        assertThat(refusal("--url", "http://127.0.0.1:1", "--prefix-cache", "-1"))
                .isEqualTo("aether loadtest: --prefix-cache -1 (expected 0+, 0 = off)");
    }

    @Test
    @Timeout(120)
    void shouldSendSampledRequestsWhenToldAndRefuseBadSamplingValues() throws Exception {
        assertThat(refusal("--url", "http://127.0.0.1:1", "--top-p", "0")).isEqualTo("aether loadtest: --temperature "
                + "0.0, --top-p 0.0, --top-k null (expected a temperature in [0, 2], top-p in (0, 1], top-k 0+)");
        assertThat(refusal("--url", "http://127.0.0.1:1", "--temperature", "-1")).startsWith(
                "aether loadtest: --temperature -1.0,");
        var model = SharedData.require("models/stories260K.gguf");
        try (var server = InferenceServer.start(new ServeSettings(model, "127.0.0.1", 0, Set.of(), 4, 8, 0, 256, 4,
                64, 0, 1 << 20, 0, null, null))) {
            var cmd = new LoadTestCommand();
            cmd.maxTokens = 8;
            cmd.temperature = 0.8;
            cmd.topK = 40;
            cmd.topP = 0.95;
            var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
            var body = cmd.requestBody(mapper, cmd.promptNode(mapper), 3);
            assertThat(body.get("temperature").asDouble()).isEqualTo(0.8);
            assertThat(body.get("top_k").asInt()).isEqualTo(40);
            assertThat(body.get("top_p").asDouble()).isEqualTo(0.95);
            assertThat(body.get("seed").asLong()).isEqualTo(3);
            LoadTestCommand.Level l = cmd.run("http://127.0.0.1:" + server.port(), cmd.promptNode(mapper), 2, 4);
            assertThat(l.tokens()).isEqualTo(4 * 8);
            // sampled requests on the CPU engine take every token from the logits row (candidates would only add a
            // pass over a row that is in host memory already: InferenceModel.samplesCandidates)
            assertThat(LoadTestCommand.tokenChoices(server.metrics()))
                    .isEqualTo("tokens from argmax 0, candidates 0, logits 32");
            cmd.temperature = 0;
            cmd.topK = null;
            cmd.topP = null;
            body = cmd.requestBody(mapper, cmd.promptNode(mapper), 3);
            assertThat(body.has("seed") || body.has("top_k") || body.has("top_p")).as("greedy: %s", body).isFalse();
        }
    }
}
