package aether.device.cpu.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The prefill GEMM allocates nothing once warm, whichever step type the process ran first. A decode-first process
 * once compiled the GEMM's dequantizer against a JDK-internal store profile that a decode kernel's interpreted
 * Vector API fallback had polluted, so every vector was boxed (here 256 KiB per call on the old code for Q8_0, Q6_K
 * and Q4_0, Q4_K depending on timing; 7.8 GB per 128-token prefill of the 1B Q8_0 model, a third of the speed; see
 * {@link Matmul}'s GEMM). The order is process-wide JIT state, so each case runs {@link GemmAfterDecodeProbe} in a
 * fresh JVM.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class JitOrderAllocationTest {

    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_K", "Q6_K", "Q4_0"})
    void prefillAfterADecodeStepShouldAllocateNothingPerMatmul(GgmlType type) throws Exception {
        Assumptions.assumeTrue(VectorSupport.available(), "vector kernels unavailable");
        long bytes = bytesPerGemm(type, "decode-first");
        if (bytes >= 256) {
            // once more in a fresh JVM: the deterministic hazard this pins boxes in every process, while a rare
            // compile-timing outcome (seen once for Q4_K, 491,520 bytes a call, in a full verify on 2 cores
            // whose surefire JVM was busy; not in 28 probe runs alone or under load) does not repeat
            long again = bytesPerGemm(type, "decode-first");
            System.out.printf("%s decode-first probe allocated %d bytes per GEMM call, a second fresh JVM %d%n",
                    type, bytes, again);
            bytes = again;
        }
        assertThat(bytes).as("bytes allocated per warm %s prefill GEMM call after a decode-first start (twice)", type)
                .isLessThan(256);
    }

    private static long bytesPerGemm(GgmlType type, String order) throws IOException, InterruptedException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        // G1 and the launcher's flags, as ./aether runs the engine
        List<String> command = List.of(java.toString(), "--add-modules=jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-XX:+UseG1GC", "-Xmx256m",
                "-cp", System.getProperty("java.class.path"), GemmAfterDecodeProbe.class.getName(), type.name(), order);
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out;
        try (var in = p.getInputStream()) {
            out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("probe finished").isTrue();
        assertThat(p.exitValue()).as("probe exit status, output:%n%s", out).isZero();
        Matcher m = Pattern.compile("bytes-per-gemm (\\d+)").matcher(out);
        assertThat(m.find()).as("probe output:%n%s", out).isTrue();
        return Long.parseLong(m.group(1));
    }
}
