package aether.device.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Optional;

/**
 * The fatbin of Aether's kernels ({@code src/main/cuda/*.cu}), which the Maven build compiles with nvcc into the
 * classpath resource {@value #RESOURCE} when nvcc is installed (SASS for sm_80 and sm_90, PTX for compute_90). A build
 * without nvcc has no such resource, and the CUDA device then reports itself unavailable.
 */
public final class KernelImage {

    public static final String RESOURCE = "/aether/cuda/aether-kernels.fatbin";

    private KernelImage() {}

    /** The fatbin's bytes, or empty when this build was made without nvcc. */
    public static Optional<byte[]> load() {
        try (InputStream in = KernelImage.class.getResourceAsStream(RESOURCE)) {
            return in == null ? Optional.empty() : Optional.of(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE + ": " + e.getMessage(), e);
        }
    }
}
