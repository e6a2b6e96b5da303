package aether.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Runs the programs in examples/ the way the README says (source-file mode on the product's classpath). */
class ExamplesTest {

    static final Path EXAMPLES = Path.of("..", "examples");

    static String run(String file) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow()));
        cmd.addAll(List.of("--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), EXAMPLES.resolve(file).toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(p.exitValue()).as(out).isZero();
            return out;
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    @Timeout(120)
    void graphGradientPrintsTheGradientOfItsWeightedSoftmax() throws Exception {
        assertThat(Files.exists(EXAMPLES.resolve("GraphGradient.java"))).isTrue();
        String out = run("GraphGradient.java");
        String line = out.lines().filter(l -> l.startsWith("dy/dx = ")).findFirst().orElseThrow();
        String[] parts = line.substring(line.indexOf('[') + 1, line.indexOf(']')).split(", ");
        double[] x = {0.5, -1.25, 2, 0.75, 1, -0.5}, w = {1.5, -0.5, 0.25, 2, 0.1, -1}, c = {1, 2, 3, 4};
        // y = sum(softmax(x·w) * c): dy/dz = p (c - p·c), dy/dx = dy/dz · wᵀ, in float64
        for (int i = 0; i < 2; i++) {
            double z0 = 0, z1 = 0;
            for (int k = 0; k < 3; k++) {
                z0 += x[i * 3 + k] * w[k * 2];
                z1 += x[i * 3 + k] * w[k * 2 + 1];
            }
            double m = Math.max(z0, z1), e0 = Math.exp(z0 - m), e1 = Math.exp(z1 - m);
            double p0 = e0 / (e0 + e1), p1 = e1 / (e0 + e1), pc = p0 * c[i * 2] + p1 * c[i * 2 + 1];
            double g0 = p0 * (c[i * 2] - pc), g1 = p1 * (c[i * 2 + 1] - pc);
            for (int k = 0; k < 3; k++) {
                double expected = g0 * w[k * 2] + g1 * w[k * 2 + 1];
                assertThat(Double.parseDouble(parts[i * 3 + k])).isCloseTo(expected, within(1e-5));
            }
        }
    }

    @Test
    @Timeout(120)
    void computeJobRunsItsBranchesOnTheActorRuntime() throws Exception {
        String out = run("ComputeJob.java");
        String line = out.lines().filter(s -> s.startsWith("y = ")).findFirst().orElseThrow(() -> new AssertionError(out));
        String[] parts = line.substring(line.indexOf('[') + 1, line.indexOf(']')).split(", ");
        double[] x = {0.5, -1.25, 2, 0.75, 1, -0.5}, a = {1.5, -0.5, 0.25, 2, 0.1, -1}, b = {-0.3, 0.8, 1.2, -0.7, 0.5,
                0.05};
        // y = relu(x·a) · tanh(x·b)ᵀ, in float64
        assertThat(parts).hasSize(4);
        double[] l = new double[4], r = new double[4];
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 2; j++) {
                double za = 0, zb = 0;
                for (int k = 0; k < 3; k++) {
                    za += x[i * 3 + k] * a[k * 2 + j];
                    zb += x[i * 3 + k] * b[k * 2 + j];
                }
                l[i * 2 + j] = Math.max(za, 0);
                r[i * 2 + j] = Math.tanh(zb);
            }
        }
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 2; j++) {
                double expected = l[i * 2] * r[j * 2] + l[i * 2 + 1] * r[j * 2 + 1];
                assertThat(Double.parseDouble(parts[i * 2 + j])).isCloseTo(expected, within(1e-5));
            }
        }
        assertThat(out.lines().filter(s -> s.startsWith("segment ")).count()).isEqualTo(3);
        assertThat(out).contains("on local/cpu-0").contains("on local/cpu-1");
    }
}
