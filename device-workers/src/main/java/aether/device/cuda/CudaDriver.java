package aether.device.cuda;

import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuInit;

import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * Whether this process can use CUDA, found out once through the driver API ({@code cuInit}, {@code cuDeviceGetCount};
 * never nvidia-smi), and the return-code check every driver call goes through.
 *
 * <p>A host without the driver library ({@code libcuda.so.1}), without a GPU, or a build without the kernel fatbin is
 * reported as {@linkplain Availability#available() unavailable} with a one-line reason; nothing is thrown, so the rest
 * of the product runs as if CUDA did not exist.
 */
public final class CudaDriver {

    /**
     * @param available   true when at least one device can be opened
     * @param deviceCount CUDA devices the driver sees (0 when unavailable)
     * @param reason      why CUDA cannot be used ("" when available)
     */
    public record Availability(boolean available, int deviceCount, String reason) {
        /** One line: {@code available: N device(s)} or {@code unavailable: <reason>}. */
        public String describe() {
            return available ? "available: " + deviceCount + " device(s)" : "unavailable: " + reason;
        }
    }

    private static volatile Availability availability;

    private CudaDriver() {}

    /** Probes the driver on first use (thread-safe, once per process). */
    public static Availability availability() {
        Availability a = availability;
        if (a == null) {
            synchronized (CudaDriver.class) {
                a = availability;
                if (a == null) {
                    a = probe();
                    availability = a;
                }
            }
        }
        return a;
    }

    private static Availability probe() {
        if (KernelImage.load().isEmpty()) {
            return new Availability(false, 0, "this build has no CUDA kernels (nvcc was not found when it was built)");
        }
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            // the driver library first, by itself: a host without the NVIDIA driver gets a plain reason, and JCuda's
            // native library is not even unpacked there
            java.lang.foreign.SymbolLookup.libraryLookup("libcuda.so.1", arena);
        } catch (IllegalArgumentException | IllegalCallerException e) {
            return new Availability(false, 0, "libcuda.so.1 not found (no NVIDIA driver on this host)");
        }
        try {
            JCudaDriver.setExceptionsEnabled(false);
            int r = cuInit(0);
            if (r != CUresult.CUDA_SUCCESS) {
                return new Availability(false, 0, "cuInit failed: " + CUresult.stringFor(r));
            }
            int[] count = new int[1];
            r = cuDeviceGetCount(count);
            if (r != CUresult.CUDA_SUCCESS) {
                return new Availability(false, 0, "cuDeviceGetCount failed: " + CUresult.stringFor(r));
            }
            if (count[0] == 0) {
                return new Availability(false, 0, "no CUDA device");
            }
            return new Availability(true, count[0], "");
        } catch (UnsatisfiedLinkError | NoClassDefFoundError | ExceptionInInitializerError e) {
            return new Availability(false, 0, "cannot load the CUDA driver library (libcuda.so.1) through JCuda: "
                    + firstLine(e));
        }
    }

    /** The telling line of a JCuda load failure (its message nests stack traces; the cause is in a later line). */
    private static String firstLine(Throwable e) {
        Throwable t = e;
        while (t.getMessage() == null && t.getCause() != null) {
            t = t.getCause();
        }
        String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage().strip();
        String best = m.lines().findFirst().orElse(m).strip();
        for (String line : m.lines().toList()) {
            if (line.contains("UnsatisfiedLinkError: /")) {  // "...: /tmp/libJCudaDriver...so: <why>"
                best = line.substring(line.indexOf("Error: ") + 7).strip();
            }
        }
        return best.length() > 200 ? best.substring(0, 200) + "..." : best;
    }

    /** Throws a {@link CudaException} naming {@code what} and the error when {@code result} is not CUDA_SUCCESS. */
    public static void check(int result, String what) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new CudaException(what + " failed: " + CUresult.stringFor(result), result);
        }
    }
}
