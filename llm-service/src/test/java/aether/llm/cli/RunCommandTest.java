package aether.llm.cli;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Sequence;
import aether.runtime.testing.SharedData;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code run} on the bundled stories260K, in-process. */
@Timeout(120)
class RunCommandTest {

    @TempDir
    Path dir;

    private static CliHarness run(String... args) {
        return CliHarness.run(new RunCommand(), args);
    }

    /** Greedy tokens straight from the engine contract (argmax of each step's logits), decoded. */
    private static String engineGreedy(String prompt, int n) {
        try (LoadedModel m = LoadedModel.open(BundledModel.locate(), EngineOptions.DEFAULTS);
                Sequence s = m.model().newSequence()) {
            int vocab = m.model().config().vocabSize();
            float[] logits = new float[vocab];
            int[] ids = m.tokenizer().encode(prompt, true, true);
            int[] all = Arrays.copyOf(ids, ids.length + n);
            m.model().step(List.of(BatchEntry.of(s, ids)), logits);
            for (int i = 0; i < n; i++) {
                int best = 0;
                for (int t = 1; t < vocab; t++) {
                    if (logits[t] > logits[best]) {
                        best = t;
                    }
                }
                all[ids.length + i] = best;
                if (i + 1 < n) {
                    m.model().step(List.of(BatchEntry.of(s, best)), logits);
                }
            }
            String full = m.tokenizer().decode(all);
            String promptText = m.tokenizer().decode(ids);
            assertThat(full).startsWith(promptText);
            return full.substring(promptText.length());
        }
    }

    @Test
    void shouldStreamTheEngineGreedyTextWhichIsLlamaCppsText() throws IOException {
        var golden = new ObjectMapper().readTree(
                Files.readAllLines(SharedData.require("golden/forward/stories260K.jsonl")).getFirst());
        assertThat(golden.get("prompt").asText()).isEqualTo("Once upon a time");
        CliHarness h = run("-p", "Once upon a time", "-n", "48", "--temp", "0", "--no-display-prompt");
        assertThat(h.exitCode).as(h.err()).isZero();
        assertThat(h.out()).isEqualTo(engineGreedy("Once upon a time", 48) + System.lineSeparator());
        assertThat(h.out()).isEqualTo(golden.get("generated_text").asText() + System.lineSeparator());
        assertThat(h.err()).containsPattern("prompt 5 tokens in [0-9.]+ ms \\([0-9.]+ t/s\\), decode 47 tokens in "
                + "[0-9.]+ ms \\([0-9.]+ t/s\\)").contains("48 tokens generated, stopped: token limit")
                .doesNotContain("seed");

        CliHarness echoed = run("-p", "Once upon a time", "-n", "48", "--temp", "0");
        assertThat(echoed.out()).isEqualTo("Once upon a time" + h.out());
    }

    @Test
    void shouldRepeatASampledRunFromThePrintedSeed() {
        CliHarness first = run("-p", "The little dog", "-n", "30", "--temp", "1.0", "--top-k", "0");
        assertThat(first.exitCode).as(first.err()).isZero();
        Matcher seed = Pattern.compile("seed (\\d+) \\(pass --seed").matcher(first.err());
        assertThat(seed.find()).as(first.err()).isTrue();
        CliHarness again = run("-p", "The little dog", "-n", "30", "--temp", "1.0", "--top-k", "0", "--seed", seed.group(1));
        assertThat(again.out()).isEqualTo(first.out());
        assertThat(again.err()).doesNotContain("pass --seed");
        CliHarness a = run("-p", "The little dog", "-n", "30", "--temp", "1.0", "--seed", "5");
        CliHarness b = run("-p", "The little dog", "-n", "30", "--temp", "1.0", "--seed", "5");
        CliHarness c = run("-p", "The little dog", "-n", "30", "--temp", "1.0", "--seed", "6", "--top-k", "0", "--min-p", "0");
        assertThat(b.out()).isEqualTo(a.out());
        assertThat(c.out()).isNotEqualTo(a.out());
    }

    @Test
    void shouldStopBeforeAStopStringWithoutPrintingIt() {
        String greedy = engineGreedy("Once upon a time", 48);
        CliHarness h = run("-p", "Once upon a time", "-n", "48", "--temp", "0", "--no-display-prompt", "--stop", "Lily");
        assertThat(h.exitCode).as(h.err()).isZero();
        assertThat(h.out()).isEqualTo(greedy.substring(0, greedy.indexOf("Lily")) + System.lineSeparator());
        assertThat(h.err()).contains("stopped: stop string \"Lily\"");
    }

    @Test
    void shouldStopAtAFullContextOrShiftAndGoOn() {
        CliHarness full = run("-p", "Once upon a time", "-n", "100", "--temp", "0", "--ctx", "16");
        assertThat(full.exitCode).as(full.err()).isZero();
        assertThat(full.err()).contains("12 tokens generated, stopped: context full");
        CliHarness shifted = run("-p", "Once upon a time", "-n", "40", "--temp", "0", "--ctx", "16", "--context-shift",
                "--ignore-eos");
        assertThat(shifted.exitCode).as(shifted.err()).isZero();
        assertThat(shifted.err()).contains("40 tokens generated, stopped: token limit").contains("context shifts: ");
        assertThat(shifted.out()).startsWith(full.out().strip());
    }

    @Test
    void shouldRejectBadInputInOneLineWithExitCode2() throws IOException {
        run("-m", dir.resolve("missing.gguf").toString()).assertBadInput("missing.gguf: no such file");
        Path text = Files.writeString(dir.resolve("notes.gguf"), "this is not a model");
        run("-m", text.toString()).assertBadInput("notes.gguf");
        run("-m", dir.toString()).assertBadInput("is a directory");
        run("--temp", "abc").assertBadInput("--temp");
        run("--temp", "-1").assertBadInput("temperature");
        run("--top-p", "0").assertBadInput("top-p");
        run("--kv-type", "q4").assertBadInput("KV cache type 'q4'");
        run("-n", "0").assertBadInput("-n 0");
        run("--batch", "0").assertBadInput("batch 0");
        run("--logit-bias", "12x").assertBadInput("--logit-bias 12x");
        run("--no-such-option").assertBadInput("--no-such-option");
    }
}
