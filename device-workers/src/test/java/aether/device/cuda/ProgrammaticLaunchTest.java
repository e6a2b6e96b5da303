package aether.device.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Test;

/**
 * The raw device address {@link ProgrammaticLaunch} passes to cuLaunchKernelEx for a JCuda pointer: base plus the
 * offset of {@code withByteOffset}, which JCuda keeps in a separate field (a kernel given only the base would read
 * the wrong rows). Needs no driver.
 */
class ProgrammaticLaunchTest {

    @Test
    void aDevicePointersAddressIncludesItsByteOffset() {
        CUdeviceptr base = new CUdeviceptr();   // native pointer 0 until the driver fills it
        assertThat(ProgrammaticLaunch.address(base)).isZero();
        assertThat(ProgrammaticLaunch.address(base.withByteOffset(4096))).isEqualTo(4096);
        assertThat(ProgrammaticLaunch.address(base.withByteOffset(4096).withByteOffset(64))).isEqualTo(4160);
    }
}
