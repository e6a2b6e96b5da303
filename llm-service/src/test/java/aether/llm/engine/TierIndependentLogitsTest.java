package aether.llm.engine;

import static org.assertj.core.api.Assertions.assertThat;

import aether.llm.synth.SynthSpec;
import aether.llm.synth.SyntheticModel;
import aether.runtime.tensor.GgmlType;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import aether.device.cpu.kernel.VectorSupport;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CPU engine's logits are the same bits whichever JIT tier runs its kernels, so a seed repeats a run exactly
 * (README) in every process, not only in those whose kernels happened to be compiled at the same moments. The
 * Vector API's intrinsics (C2) and its Java fallbacks (interpreter, C1) agree lane by lane on every operation the
 * kernels use except a float {@code reduceLanes(ADD)}, whose order is left open (the fallback adds lanes in order,
 * C2 as a tree): the kernels sum their lanes in a fixed order of their own instead. A difference of one ulp there is
 * not harmless: with an f16 KV cache it can move a stored K or V value to the neighbouring f16 and the logits by
 * ~1e-4, enough to change a sampled token.
 *
 * <p>{@link TierProbe} runs a prompt and greedy decode steps, alone and as a batch of three sequences (the serving
 * engine's step), on the bundled stories260K (F32) and on small synthetic models of the main weight types, in a JVM limited to C1 (fallbacks throughout) and in a default JVM several times
 * (the first runs interpreted or C1, the last C2): every hash must be the same. It runs for the 256-bit kernels and,
 * where the CPU has them, the 512-bit ones.
 */
@Timeout(value = 480, unit = TimeUnit.SECONDS)
class TierIndependentLogitsTest {

    private static final int REPS = 30;

    @TempDir
    Path dir;

    static Stream<Integer> kernelWidths() {
        return VectorSupport.wideAvailable() ? Stream.of(256, 512) : Stream.of(256);
    }

    @ParameterizedTest(name = "{0}-bit kernels")
    @MethodSource("kernelWidths")
    void shouldComputeTheSameLogitsInEveryJitTier(int bits) throws Exception {
        Path vocab = SharedData.require("models/vocab/ggml-vocab-llama-spm.gguf");
        List<String> models = new ArrayList<>();
        models.add(SharedData.require("models/stories260K.gguf").toString());
        for (GgmlType type : List.of(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.F16)) {
            Path file = dir.resolve("tier-" + type + ".gguf");
            // ffn 4352: long enough rows for the byte-activation Q4_0 path; head size 64 for the vector attention
            SyntheticModel.of(new SynthSpec("synth-tier", 2, 256, 4352, 4, 2, 64, 10000f, 1e-5f, type, 7), vocab)
                    .write(file, 2, done -> {});
            models.add(file.toString());
        }
        String width = "-Daether.vector.bits=" + bits;
        Map<String, List<String>> c1 = probe(List.of(width, "-XX:TieredStopAtLevel=1"), 1, models);
        Map<String, List<String>> tiered = probe(List.of(width), REPS, models);
        for (String model : c1.keySet()) {
            String fallback = c1.get(model).getFirst();
            assertThat(tiered.get(model)).as("%s: logits hash of each of %d runs in a default JVM, against a C1-only "
                    + "JVM's %s", model, REPS, fallback).hasSize(REPS).containsOnly(fallback);
        }
    }

    /** Hashes by model file name, in run order. */
    private static Map<String, List<String>> probe(List<String> flags, int reps, List<String> models)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx1g"));
        command.addAll(flags);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), TierProbe.class.getName(),
                Integer.toString(reps)));
        command.addAll(models);
        long start = System.nanoTime();
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out;
        try (var in = p.getInputStream()) {
            out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertThat(p.waitFor(400, TimeUnit.SECONDS)).as("probe finished").isTrue();
        assertThat(p.exitValue()).as("probe %s exit status, output:%n%s", flags, out).isZero();
        System.out.printf("tier probe %s: %d runs of %d models in %.1f s%n", flags, reps, models.size(),
                (System.nanoTime() - start) / 1e9);
        Map<String, List<String>> hashes = new TreeMap<>();
        Matcher m = Pattern.compile("tier-hash (\\d+) (\\S+) ([0-9a-f]{16})").matcher(out);
        while (m.find()) {
            hashes.computeIfAbsent(m.group(2), k -> new ArrayList<>()).add(m.group(3));
        }
        assertThat(hashes).as("probe %s output:%n%s", flags, out).hasSize(models.size());
        return hashes;
    }
}
