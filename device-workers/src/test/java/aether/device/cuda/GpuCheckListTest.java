package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The GPU tests run only where scripts/gpu-check.sh runs them, from the list of classes it names; a GPU test class
 * left off that list would never run anywhere (CI has no GPU). This reads the test sources of the three CUDA test
 * packages (the ones gpu-check packs) and the script, and names every {@code @Tag("gpu")} class the list lacks.
 */
class GpuCheckListTest {

    private static final Path ROOT = Path.of("..");
    /** The annotation on a line of its own (a class's), not the string in this file's code. */
    private static final java.util.regex.Pattern GPU_TAG =
            java.util.regex.Pattern.compile("^@Tag\\(\"gpu\"\\)", java.util.regex.Pattern.MULTILINE);
    private static final List<Path> PACKAGES = List.of(
            Path.of("device-workers/src/test/java/aether/device/cuda"),
            Path.of("llm-service/src/test/java/aether/llm/engine/cuda"),
            Path.of("scheduler/src/test/java/aether/scheduler/cuda"));

    @Test
    void everyGpuTestClassIsOnTheGpuCheckList() throws IOException {
        String script = Files.readString(ROOT.resolve("scripts/gpu-check.sh"));
        List<String> gpuClasses = new ArrayList<>();
        for (Path pkg : PACKAGES) {
            try (Stream<Path> files = Files.list(ROOT.resolve(pkg))) {
                for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
                    if (GPU_TAG.matcher(Files.readString(f)).find()) {
                        String pkgName = pkg.toString().replaceFirst("^[^/]+/src/test/java/", "").replace('/', '.');
                        gpuClasses.add(pkgName + "." + f.getFileName().toString().replace(".java", ""));
                    }
                }
            }
        }
        assertThat(gpuClasses).as("@Tag(\"gpu\") classes found").hasSizeGreaterThanOrEqualTo(10);
        assertThat(gpuClasses).as("GPU test classes missing from TEST_CLASSES in scripts/gpu-check.sh")
                .allMatch(c -> script.contains(c + " ") || script.contains(c + ")") || script.contains(c + "\n"));
    }
}
