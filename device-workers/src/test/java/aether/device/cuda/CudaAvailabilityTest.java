package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Runs everywhere (no GPU needed): the build's kernel image and the clean "unavailable" report. */
@Timeout(60)
class CudaAvailabilityTest {

    @Test
    void theFatbinIsPackagedWhenTheBuildHadNvcc() {
        if (Files.isExecutable(Path.of("/usr/local/cuda/bin/nvcc"))) {
            byte[] image = KernelImage.load().orElseThrow(() -> new AssertionError(
                    "nvcc is installed but " + KernelImage.RESOURCE + " is missing from the classpath"));
            // a fatbin starts with its magic 0xBA55ED50 (little-endian)
            assertThat(image.length).isGreaterThan(10_000);
            int magic = (image[0] & 0xFF) | (image[1] & 0xFF) << 8 | (image[2] & 0xFF) << 16 | (image[3] & 0xFF) << 24;
            assertThat(magic).as("fatbin magic").isEqualTo(0xBA55ED50);
        } else {
            assertThat(KernelImage.load()).as("no nvcc, no kernels").isEmpty();
        }
    }

    @Test
    void availabilityIsOneLineAndOpeningFailsCleanlyWithoutADevice() {
        CudaDriver.Availability a = CudaDriver.availability();
        assertThat(a.describe()).doesNotContain("\n").isNotBlank();
        if (a.available()) {
            assertThat(a.deviceCount()).isPositive();
            assertThat(a.reason()).isEmpty();
            assertThatThrownBy(() -> CudaDevice.open(a.deviceCount()))
                    .isInstanceOf(CudaException.class).hasMessageContaining("expected 0..");
        } else {
            assertThat(a.deviceCount()).isZero();
            assertThat(a.describe()).startsWith("unavailable: ").hasSizeLessThan(300);
            assertThatThrownBy(() -> CudaDevice.open(0))
                    .isInstanceOf(CudaException.class)
                    .hasMessage("CUDA " + a.describe());
            // asking twice gives the same answer and still throws nothing
            assertThat(CudaDriver.availability()).isEqualTo(a);
        }
    }
}
