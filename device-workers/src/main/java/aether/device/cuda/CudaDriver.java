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

    private static String firstLine(Throwable e) {
        Throwable t = e;
        while (t.getMessage() == null && t.getCause() != null) {
            t = t.getCause();
        }
        String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage().strip();
        int nl = m.indexOf('\n');
        m = nl < 0 ? m : m.substring(0, nl).strip();
        return m.length() > 200 ? m.substring(0, 200) + "..." : m;
    }

    /** Throws a {@link CudaException} naming {@code what} and the error when {@code result} is not CUDA_SUCCESS. */
    public static void check(int result, String what) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new CudaException(what + " failed: " + CUresult.stringFor(result), result);
        }
    }
}
