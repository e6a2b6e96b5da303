package aether.device.spi;

import aether.runtime.protocol.Location;
import java.lang.foreign.MemorySegment;

/**
 * A region of one device's memory. Host-addressable buffers (the CPU device's, or pinned host memory) expose their
 * bytes through {@link #host()}; others are reached only through {@link Device#upload}/{@link Device#download}.
 */
public interface DeviceBuffer {

    long byteSize();

    /** Where the bytes are: host memory or a device's memory. */
    Location location();

    /** The bytes as host memory, or null when the buffer lives in device memory only. */
    MemorySegment host();
}
