package aether.device.cuda;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * Which CUDA GPUs a node runs workers on, decided at start through the driver API ({@link CudaDriver#availability()},
 * never nvidia-smi): {@code auto} opens every device the driver sees and runs CPU workers only (after one log line)
 * where there is none or no driver; {@code on} is the same but fails the start when no GPU can be opened; {@code off}
 * opens none.
 */
public enum GpuWorkers {
    AUTO, ON, OFF;

    /** The system property that sets the mode of runtimes started without one ({@code auto} when unset). */
    public static final String PROPERTY = "aether.gpu-workers";

    /**
     * Parses {@code auto}, {@code on} or {@code off} (any case).
     *
     * @throws IllegalArgumentException naming {@code setting} and the value otherwise
     */
    public static GpuWorkers parse(String setting, String value) {
        try {
            return valueOf(value.strip().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new IllegalArgumentException(setting + ": '" + value + "' (expected: auto, on or off)");
        }
    }

    /** The mode {@link #PROPERTY} names, {@link #AUTO} when unset. */
    public static GpuWorkers fromSystemProperty() {
        String v = System.getProperty(PROPERTY);
        return v == null || v.isBlank() ? AUTO : parse("-D" + PROPERTY, v);
    }

    /**
     * Opens one {@link CudaDevice} per GPU as this mode says; {@code log} gets one line when GPUs were looked for and
     * none is used, and one per device that failed to open.
     *
     * @throws IllegalStateException in mode {@link #ON} when no GPU can be opened
     */
    public List<CudaDevice> open(Consumer<String> log) {
        if (this == OFF) {
            return List.of();
        }
        CudaDriver.Availability a = CudaDriver.availability();
        if (!a.available()) {
            String line = "no GPU workers: CUDA " + a.describe();
            if (this == ON) {
                throw new IllegalStateException(line + " (gpu-workers is 'on'; 'auto' would run CPU workers only)");
            }
            log.accept(line + "; CPU workers only");
            return List.of();
        }
        List<CudaDevice> devices = new ArrayList<>();
        for (int i = 0; i < a.deviceCount(); i++) {
            try {
                devices.add(CudaDevice.open(i));
            } catch (RuntimeException e) {
                log.accept("GPU " + i + " left out: " + e.getMessage());
            }
        }
        if (devices.isEmpty() && this == ON) {
            throw new IllegalStateException("no GPU workers: none of the " + a.deviceCount()
                    + " CUDA device(s) could be opened (gpu-workers is 'on')");
        }
        return devices;
    }
}
