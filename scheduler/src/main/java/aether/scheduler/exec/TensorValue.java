package aether.scheduler.exec;

import aether.runtime.ir.TensorType;

/**
 * A value bound to a graph input or produced by an executor. Host arrays ({@link HostTensor}) and row-addressable weights
 * ({@link WeightTensor}) are the kinds the reference executor understands; a device backend adds its own (a device
 * buffer with the stream that last wrote it) without changing this interface.
 */
public interface TensorValue {

    TensorType type();
}
