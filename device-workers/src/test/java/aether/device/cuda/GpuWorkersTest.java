package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Runs everywhere: GPU discovery at node start. Without a driver or GPU, {@code auto} opens nothing and says so in one
 * line, {@code on} refuses to start, {@code off} neither looks nor logs; with a GPU, {@code auto} opens one device per
 * GPU the driver reports.
 */
@Timeout(60)
class GpuWorkersTest {

    @Test
    void autoOpensEveryGpuOrLogsOneLineWithoutOne() {
        CudaDriver.Availability a = CudaDriver.availability();
        List<String> log = new ArrayList<>();
        List<CudaDevice> devices = GpuWorkers.AUTO.open(log::add);
        try {
            if (a.available()) {
                assertThat(devices).hasSize(a.deviceCount());
                for (int i = 0; i < devices.size(); i++) {
                    assertThat(devices.get(i).capabilities().ordinal()).isEqualTo(i);
                    assertThat(devices.get(i).capabilities().ops()).isEqualTo(SegmentLowering.OPS);
                }
                assertThat(log).isEmpty();
            } else {
                assertThat(devices).isEmpty();
                assertThat(log).singleElement().asString()
                        .isEqualTo("no GPU workers: CUDA " + a.describe() + "; CPU workers only")
                        .doesNotContain("\n");
            }
        } finally {
            devices.forEach(CudaDevice::close);
        }
    }

    @Test
    void onRefusesToStartWithoutAGpu() {
        CudaDriver.Availability a = CudaDriver.availability();
        if (a.available()) {
            List<CudaDevice> devices = GpuWorkers.ON.open(line -> { });
            assertThat(devices).isNotEmpty();
            devices.forEach(CudaDevice::close);
        } else {
            assertThatThrownBy(() -> GpuWorkers.ON.open(line -> { }))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("no GPU workers: CUDA unavailable: ")
                    .hasMessageContaining("gpu-workers is 'on'");
        }
    }

    @Test
    void offNeitherLooksNorLogs() {
        List<String> log = new ArrayList<>();
        assertThat(GpuWorkers.OFF.open(log::add)).isEmpty();
        assertThat(log).isEmpty();
    }

    @Test
    void parsesTheSettingAndNamesItWhenWrong() {
        assertThat(GpuWorkers.parse("x", " Auto ")).isEqualTo(GpuWorkers.AUTO);
        assertThat(GpuWorkers.parse("x", "off")).isEqualTo(GpuWorkers.OFF);
        assertThat(GpuWorkers.parse("x", "ON")).isEqualTo(GpuWorkers.ON);
        assertThatThrownBy(() -> GpuWorkers.parse("aether.node.gpu-workers", "yes"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("aether.node.gpu-workers: 'yes' (expected: auto, on or off)");
        String before = System.getProperty(GpuWorkers.PROPERTY);
        try {
            System.clearProperty(GpuWorkers.PROPERTY);
            assertThat(GpuWorkers.fromSystemProperty()).isEqualTo(GpuWorkers.AUTO);
            System.setProperty(GpuWorkers.PROPERTY, "off");
            assertThat(GpuWorkers.fromSystemProperty()).isEqualTo(GpuWorkers.OFF);
            System.setProperty(GpuWorkers.PROPERTY, "sometimes");
            assertThatThrownBy(GpuWorkers::fromSystemProperty).hasMessageContaining("-Daether.gpu-workers: 'sometimes'");
        } finally {
            if (before == null) {
                System.clearProperty(GpuWorkers.PROPERTY);
            } else {
                System.setProperty(GpuWorkers.PROPERTY, before);
            }
        }
    }
}
