package aether.llm.cli;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.gguf.GgufFile;
import aether.llm.gguf.GgufWriter;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code chat} driven by a scripted stdin, on the bundled stories260K (which has no template of its own). */
@Timeout(180)
class ChatCommandTest {

    static final String TEMPLATE = """
            {% for m in messages %}{{ m.role }}: {{ m.content }}
            {% endfor %}{% if add_generation_prompt %}assistant:{% endif %}""";

    @TempDir
    Path dir;

    private static CliHarness chat(String stdin, String... args) {
        var command = new ChatCommand();
        command.input = new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8));
        return CliHarness.run(command, args);
    }

    private Path templateFile() throws IOException {
        return Files.writeString(dir.resolve("chat.jinja"), TEMPLATE);
    }

    /** The replies on stdout: each is followed by an empty line. */
    private static List<String> replies(String out) {
        return List.of(out.split(System.lineSeparator() + System.lineSeparator(), -1)).subList(0,
                out.split(System.lineSeparator() + System.lineSeparator(), -1).length - 1);
    }

    @Test
    void shouldRefuseAModelWithoutAChatTemplateInOneLine() {
        chat("Hello\n").assertBadInput("has no chat template (tokenizer.chat_template); give one with --chat-template-file");
    }

    @Test
    void shouldHoldAMultiTurnConversationReusingTheCacheAndResetOnCommand() throws IOException {
        CliHarness h = chat("Hello\n\nTell me a story\n/reset\nHello\n", "--chat-template-file",
                templateFile().toString(), "--temp", "0", "-n", "12", "--timings", "--stop", "\n");
        assertThat(h.exitCode).as(h.err()).isZero();
        List<String> replies = replies(h.out());
        assertThat(replies).as(h.out()).hasSize(3);
        assertThat(replies.get(2)).as("after /reset the first turn repeats").isEqualTo(replies.get(0));
        assertThat(h.err()).contains("conversation reset");
        Matcher reuse = Pattern.compile("(\\d+) of (\\d+) prompt tokens reused").matcher(h.err());
        int[] reused = new int[3];
        int[] prompt = new int[3];
        for (int i = 0; i < 3; i++) {
            assertThat(reuse.find()).as(h.err()).isTrue();
            reused[i] = Integer.parseInt(reuse.group(1));
            prompt[i] = Integer.parseInt(reuse.group(2));
        }
        assertThat(reused[0]).isZero();
        assertThat(reused[1]).as("second turn runs only what is new").isPositive().isLessThan(prompt[1]);
        assertThat(reused[2]).as("nothing survives a reset").isZero();
        assertThat(prompt[2]).isEqualTo(prompt[0]);
    }

    @Test
    void shouldUseTheTemplateInsideTheModelAndLeaveCleanlyAtEndOfInput() throws IOException {
        Path model = dir.resolve("stories-with-template.gguf");
        try (GgufFile source = GgufFile.open(BundledModel.locate())) {
            var metadata = source.metadata().toBuilder().putString("tokenizer.chat_template", TEMPLATE).build();
            GgufWriter.write(model, metadata, GgufWriter.tensorsOf(source));
        }
        CliHarness h = chat("Hi there\n", "-m", model.toString(), "--temp", "0", "-n", "8");
        assertThat(h.exitCode).as(h.err()).isZero();
        assertThat(replies(h.out())).hasSize(1);
        assertThat(replies(h.out()).getFirst()).isNotBlank();

        CliHarness empty = chat("", "-m", model.toString());
        assertThat(empty.exitCode).as(empty.err()).isZero();
        assertThat(empty.out()).isEmpty();

        CliHarness exit = chat("/exit\nHello\n", "-m", model.toString());
        assertThat(exit.exitCode).isZero();
        assertThat(exit.out()).isEmpty();
    }

    @Test
    void shouldKeepGoingWhenATurnNoLongerFitsTheContext() throws IOException {
        CliHarness h = chat("Hello\n" + "word ".repeat(40) + "\nHi\n", "--chat-template-file", templateFile().toString(),
                "--temp", "0", "-n", "4", "--ctx", "64");
        assertThat(h.exitCode).as(h.err()).isZero();
        assertThat(h.err()).contains("the context 64 (reset it to go on)");
        assertThat(replies(h.out())).as(h.out() + h.err()).hasSize(2);
    }

    @Test
    void shouldRejectAMissingTemplateFileInOneLine() {
        chat("Hello\n", "--chat-template-file", dir.resolve("nope.jinja").toString())
                .assertBadInput("nope.jinja: no such file");
    }
}
