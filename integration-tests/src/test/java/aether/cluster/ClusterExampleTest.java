package aether.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** examples/ClusterJob.java, run as the README says, against a worker node in another JVM. */
class ClusterExampleTest {

    @Test
    @Timeout(120)
    void shouldRunTheClusterJobExampleOnTheOtherNodesWorker() throws Exception {
        Path example = Path.of("..", "examples", "ClusterJob.java");
        assertThat(Files.exists(example)).isTrue();
        try (NodeProcess worker = NodeProcess.start(ClusterSupport.testFlags(), "--port", "0", "--cpu-threads", "1")) {
            String workerId = worker.awaitReady(Duration.ofSeconds(60));
            List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow()));
            cmd.addAll(List.of("--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                    "-Daether.exchange.aeron-dir=" + worker.aeronDir() + "-client",
                    "-cp", System.getProperty("java.class.path"), example.toString(), ClusterSupport.hostPort(workerId)));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            try {
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertThat(p.waitFor(90, TimeUnit.SECONDS)).isTrue();
                assertThat(p.exitValue()).as(out).isZero();
                assertThat(out).contains("segment 0 ran on " + workerId + "/cpu-0");
                assertThat(out).contains("max |difference| from the reference executor: 0.0");
            } finally {
                p.destroyForcibly();
            }
        }
    }
}
