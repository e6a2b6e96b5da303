package aether.runtime.protocol;

import aether.runtime.ir.Op;
import aether.runtime.tensor.GgmlType;
import java.util.Objects;
import java.util.Set;

/**
 * What a device worker offers, as it registers: who it is, its device, memory and parallelism, and what it can run.
 *
 * @param workerId    unique in the cluster, e.g. {@code node-a/cpu-0}
 * @param nodeId      the node whose memory the worker reads and writes (same node: zero-copy hand-off)
 * @param kind        the device kind
 * @param ordinal     the device's ordinal among its kind on the node
 * @param memoryBytes device memory the worker may use for segment outputs
 * @param concurrency segments it runs at once; the scheduler dispatches no more than this
 * @param ops         op kinds it runs, as {@link #opKind(Op)} names them
 * @param dtypes      element types of values it computes (f32, i32, ...)
 * @param quantTypes  ggml block types it reads as weights
 */
public record WorkerCapabilities(String workerId, String nodeId, DeviceKind kind, int ordinal, long memoryBytes,
        int concurrency, Set<String> ops, Set<GgmlType> dtypes, Set<GgmlType> quantTypes) {

    public WorkerCapabilities {
        Objects.requireNonNull(workerId, "workerId");
        Objects.requireNonNull(nodeId, "nodeId");
        Objects.requireNonNull(kind, "kind");
        if (memoryBytes < 0 || concurrency < 1 || ordinal < 0) {
            throw new IllegalArgumentException("worker " + workerId + ": memoryBytes " + memoryBytes + ", concurrency "
                    + concurrency + ", ordinal " + ordinal + " (expected: 0+, 1+, 0+)");
        }
        ops = Set.copyOf(ops);
        dtypes = Set.copyOf(dtypes);
        quantTypes = Set.copyOf(quantTypes);
    }

    /** The name capabilities use for {@code op}'s kind: its IR record's simple name ({@code MatMul}, {@code Unary}). */
    public static String opKind(Op op) {
        return op.getClass().getSimpleName();
    }

    /** Every op kind of the IR. */
    public static Set<String> allOpKinds() {
        java.util.Set<String> all = new java.util.TreeSet<>();
        for (Class<?> c : Op.class.getPermittedSubclasses()) {
            all.add(c.getSimpleName());
        }
        return all;
    }

    /** Why this worker cannot compute a value of {@code op} at {@code type}, or null when it can. */
    public String cannotRun(Op op, aether.runtime.ir.TensorType type) {
        if (!ops.contains(opKind(op))) {
            return "op " + opKind(op) + " (" + op.name() + ") is not supported by " + workerId;
        }
        GgmlType t = type.dtype().ggml();
        boolean ok = type.dtype().isQuantized() ? quantTypes.contains(t) : dtypes.contains(t);
        return ok ? null : "dtype " + type.dtype() + " is not supported by " + workerId;
    }
}
