package aether.device.cuda;

import aether.device.spi.DeviceBuffer;
import aether.runtime.protocol.Location;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicBoolean;
import jcuda.driver.CUdeviceptr;

/** Device memory of one {@link CudaDevice}: reached only through upload/download (no host view). */
public final class CudaBuffer implements DeviceBuffer {
    private final CUdeviceptr pointer;
    private final long byteSize;
    private final Location location;
    private final AtomicBoolean freed = new AtomicBoolean();

    CudaBuffer(CUdeviceptr pointer, long byteSize, int ordinal) {
        this.pointer = pointer;
        this.byteSize = byteSize;
        this.location = Location.device(ordinal);
    }

    /** The device pointer (for kernels of this device). */
    public CUdeviceptr pointer() {
        return pointer;
    }

    @Override
    public long byteSize() {
        return byteSize;
    }

    @Override
    public Location location() {
        return location;
    }

    @Override
    public MemorySegment host() {
        return null;
    }

    /** True the first time only. */
    boolean release() {
        return freed.compareAndSet(false, true);
    }

    boolean isFreed() {
        return freed.get();
    }
}
