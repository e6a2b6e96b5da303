package aether.device.spi;

/** An allocation that the device's memory budget cannot hold. */
public final class DeviceMemoryException extends RuntimeException {
    private final long requestedBytes;
    private final long allocatedBytes;
    private final long budgetBytes;

    public DeviceMemoryException(String device, long requestedBytes, long allocatedBytes, long budgetBytes) {
        super("%s: cannot allocate %,d bytes (%,d of %,d in use)".formatted(device, requestedBytes, allocatedBytes,
                budgetBytes));
        this.requestedBytes = requestedBytes;
        this.allocatedBytes = allocatedBytes;
        this.budgetBytes = budgetBytes;
    }

    public long requestedBytes() {
        return requestedBytes;
    }

    public long allocatedBytes() {
        return allocatedBytes;
    }

    public long budgetBytes() {
        return budgetBytes;
    }
}
