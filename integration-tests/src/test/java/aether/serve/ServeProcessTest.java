package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.testing.SharedData;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code aether serve} as users start it: its own JVM through {@code AetherMain}, settings from an environment variable
 * and options, stopped by SIGTERM (the shutdown hook closes the server).
 */
class ServeProcessTest {

    @Test
    @Timeout(120)
    void shouldServeFromItsOwnJvmWithTheKeyFromTheEnvironmentAndStopOnSigterm() throws Exception {
        var model = SharedData.require("models/stories260K.gguf");
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow()));
        cmd.addAll(List.of("--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "aether.cluster.cli.AetherMain", "serve", "-m", model.toString(), "--port", "0", "--ctx", "256",
                "--parallel", "2"));
        var pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("AETHER_SERVE_API_KEY", "from-env");
        Process p = pb.start();
        try {
            var out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            Pattern listening = Pattern.compile("on http://127\\.0\\.0\\.1:(\\d+)");
            int port = -1;
            var seen = new StringBuilder();
            String line;
            while (port < 0 && (line = out.readLine()) != null) {
                seen.append(line).append('\n');
                Matcher m = listening.matcher(line);
                if (m.find()) {
                    port = Integer.parseInt(m.group(1));
                }
            }
            assertThat(port).as(seen.toString()).isPositive();
            Thread.ofVirtual().start(() -> {   // keep draining its output
                try {
                    out.transferTo(java.io.Writer.nullWriter());
                } catch (java.io.IOException ignored) {
                    // the process ended
                }
            });
            var anonymous = new ServerClient(port, null);
            assertThat(anonymous.post("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}").statusCode())
                    .isEqualTo(401);
            var keyed = new ServerClient(port, "from-env");
            assertThat(keyed.postJson("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}")
                    .get("usage").get("completion_tokens").asInt()).isEqualTo(3);
            p.destroy();   // SIGTERM
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).as("stops on SIGTERM").isTrue();
        } finally {
            p.destroyForcibly();
        }
    }
}
