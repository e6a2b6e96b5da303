package aether.device.spi;

import aether.runtime.protocol.DeviceKind;
import aether.runtime.protocol.WorkerCapabilities;
import aether.runtime.tensor.GgmlType;
import java.util.Set;

/**
 * What a device offers: kind and ordinal, the memory its buffers may use, how many segments it runs at once, and the
 * op kinds ({@link WorkerCapabilities#opKind}), value types and weight block types it supports.
 */
public record DeviceCapabilities(DeviceKind kind, int ordinal, long memoryBytes, int concurrency, Set<String> ops,
        Set<GgmlType> dtypes, Set<GgmlType> quantTypes) {

    public DeviceCapabilities {
        if (kind == null || ordinal < 0 || memoryBytes < 0 || concurrency < 1) {
            throw new IllegalArgumentException("device capabilities: kind " + kind + ", ordinal " + ordinal
                    + ", memoryBytes " + memoryBytes + ", concurrency " + concurrency
                    + " (expected: a kind, 0+, 0+, 1+)");
        }
        ops = Set.copyOf(ops);
        dtypes = Set.copyOf(dtypes);
        quantTypes = Set.copyOf(quantTypes);
    }

    /** As a worker announces them. */
    public WorkerCapabilities forWorker(String workerId, String nodeId) {
        return new WorkerCapabilities(workerId, nodeId, kind, ordinal, memoryBytes, concurrency, ops, dtypes,
                quantTypes);
    }
}
