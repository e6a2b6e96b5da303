package aether.cluster.node;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Environment variables reach the node's settings ({@code CONFIG_FORCE_*} and the {@code AETHER_*} names of
 * reference.conf): checked in a child JVM, since a test cannot set its own environment. A bad value makes
 * {@code aether node} stop before starting anything, naming the setting, so no cluster is formed.
 */
class NodeEnvironmentTest {

    static String runNode(Map<String, String> env) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow()));
        for (String flag : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (flag.startsWith("--add-") || flag.startsWith("--enable-native-access") || flag.startsWith("--sun-misc")) {
                cmd.add(flag);
            }
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "aether.cluster.cli.AetherMain", "node"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
            return p.exitValue() + ": " + out.lines().filter(l -> !l.startsWith("WARNING: Using incubator modules"))
                    .collect(java.util.stream.Collectors.joining("\n")).strip();
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    @Timeout(120)
    void shouldReadSettingsFromTheEnvironment() throws Exception {
        assertThat(runNode(Map.of("CONFIG_FORCE_aether_node_port", "99999")))
                .isEqualTo("2: aether node: aether.node.port: 99999 (expected: 0..65535)");
        assertThat(runNode(Map.of("AETHER_TRANSPORT", "carrier-pigeon")))
                .isEqualTo("2: aether node: aether.exchange.transport: 'carrier-pigeon' (expected: auto, ipc or udp)");
    }
}
