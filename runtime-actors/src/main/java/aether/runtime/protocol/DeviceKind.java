package aether.runtime.protocol;

/** The kind of device a worker drives. */
public enum DeviceKind {
    /** Host CPU cores running Vector API kernels. */
    CPU,
    /** An NVIDIA GPU driven through the CUDA driver API. */
    CUDA
}
