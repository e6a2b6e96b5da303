package aether.device.cuda;

/** A CUDA driver call that failed: the call, its arguments where they help, and the driver's error name. */
public final class CudaException extends RuntimeException {
    private final int result;

    public CudaException(String message, int result) {
        super(message);
        this.result = result;
    }

    /** The {@code CUresult} code (0 when the failure is not a driver return code). */
    public int result() {
        return result;
    }
}
