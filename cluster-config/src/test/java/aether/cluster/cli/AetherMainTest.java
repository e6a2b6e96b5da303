package aether.cluster.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class AetherMainTest {

    @Test
    void shouldOfferInspectAsASubcommand() {
        var cli = AetherMain.commandLine();
        assertThat(cli.getSubcommands()).containsKey("inspect");
        var err = new StringWriter();
        int code = cli.setErr(new PrintWriter(err)).execute("inspect", "/definitely/not/here.gguf");
        assertThat(code).isEqualTo(2);
        assertThat(err.toString()).isEqualTo("aether inspect: /definitely/not/here.gguf: no such file" + System.lineSeparator());
    }

    @Test
    void shouldOfferNodeAsASubcommandThatNamesABadSetting() {
        var cli = AetherMain.commandLine();
        assertThat(cli.getSubcommands()).containsKey("node");
        var err = new StringWriter();
        int code = cli.setErr(new PrintWriter(err)).execute("node", "--port", "99999");
        assertThat(code).isEqualTo(2);
        assertThat(err.toString()).isEqualTo("aether node: aether.node.port: 99999 (expected: 0..65535)" + System.lineSeparator());
    }

    @Test
    void everySubcommandAnswersHelpWithItsUsage() {
        var cli = AetherMain.commandLine();
        for (String name : cli.getSubcommands().keySet()) {
            if (name.equals("help")) {
                continue;
            }
            var out = new StringWriter();
            var err = new StringWriter();
            int code = AetherMain.commandLine().setOut(new PrintWriter(out)).setErr(new PrintWriter(err))
                    .execute(name, "--help");
            assertThat(code).as("%s --help: %s", name, err).isZero();
            assertThat(out.toString()).as("%s --help", name).startsWith("Usage: aether " + name);
        }
    }
}
