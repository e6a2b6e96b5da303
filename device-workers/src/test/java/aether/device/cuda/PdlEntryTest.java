package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every kernel must begin with {@code pdl_entry()} (pdl.cuh): on Hopper {@link CudaContext} launches all kernels with
 * programmatic dependent launch, so a kernel may start while its predecessor still runs, and one that touched memory
 * before waiting would race with it: wrong results now and then, never an error. This reads the CUDA sources (it
 * needs no GPU) and names each {@code __global__} function whose body starts with anything else.
 */
class PdlEntryTest {

    private static final Path SOURCES = Path.of("src/main/cuda");
    static final Pattern KERNEL = Pattern.compile("__global__[^{;]*?\\b(\\w+)\\s*\\(");
    private static final Pattern ENTRY = Pattern.compile("pdl_entry\\s*\\(\\s*\\)\\s*;");

    @Test
    void everyKernelWaitsForItsPredecessorFirst() throws IOException {
        List<String> kernels = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        try (Stream<Path> files = Files.list(SOURCES)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".cu") || p.toString().endsWith(".cuh")).sorted()
                    .toList()) {
                String src = withoutComments(Files.readString(f));
                Matcher m = KERNEL.matcher(src);
                while (m.find()) {
                    String name = f.getFileName() + ":" + m.group(1);
                    String first = src.substring(src.indexOf('{', m.end()) + 1).replace("\\", "").strip();
                    kernels.add(name);
                    if (!ENTRY.matcher(first).lookingAt()) {
                        missing.add(name);
                    }
                }
            }
        }
        assertThat(kernels).as("kernels found in %s", SOURCES.toAbsolutePath()).hasSizeGreaterThan(40);
        assertThat(missing).as("kernels whose first statement is not pdl_entry();").isEmpty();
    }

    @Test
    void aKernelThatReadsFirstIsFound() {
        String src = withoutComments("""
                // a __global__ mentioned in a comment is no kernel
                extern "C" __global__ void __launch_bounds__(256) bad(const float *x, float *y) {
                    y[0] = x[0];
                    pdl_entry();
                }
                """);
        Matcher m = KERNEL.matcher(src);
        assertThat(m.find()).isTrue();
        assertThat(m.group(1)).isEqualTo("bad");
        assertThat(ENTRY.matcher(src.substring(src.indexOf('{', m.end()) + 1).strip()).lookingAt()).isFalse();
        assertThat(m.find()).as("only one kernel").isFalse();
    }

    static String withoutComments(String src) {
        // comments, and __launch_bounds__(...) (whose parenthesis would pass for the kernel's parameter list)
        return src.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\\n]*", "")
                .replaceAll("__launch_bounds__\\s*\\([^)]*\\)", " ");
    }
}
