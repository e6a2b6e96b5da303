package aether.llm.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import picocli.CommandLine;

/** Runs one command in-process as {@code ./aether} would (one-line parse errors), capturing stdout and stderr. */
final class CliHarness {

    final StringWriter out = new StringWriter();
    final StringWriter err = new StringWriter();
    int exitCode;

    static CliHarness run(Object command, String... args) {
        var h = new CliHarness();
        CommandLine cli = CliSupport.configure(new CommandLine(command));
        cli.setOut(new PrintWriter(h.out, true));
        cli.setErr(new PrintWriter(h.err, true));
        h.exitCode = cli.execute(args);
        return h;
    }

    String out() {
        return out.toString();
    }

    String err() {
        return err.toString();
    }

    /** Asserts exit code 2 and exactly one clear line on stderr (no stack trace), which contains {@code fragment}. */
    void assertBadInput(String fragment) {
        assertThat(exitCode).as(err()).isEqualTo(2);
        var lines = err().lines().filter(l -> !l.contains("aether: load")).toList();
        assertThat(lines).as(err()).hasSize(1);
        assertThat(lines.getFirst()).startsWith("aether ").contains(fragment).doesNotContain("Exception");
    }
}
