package aether.scheduler.exec;

import aether.runtime.ir.OpGraph;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;

/**
 * Runs an {@link OpGraph}. Asynchronous by contract: {@link #execute} returns at once (a device backend enqueues its
 * kernels and copies on a stream) and the stage completes, possibly on another thread, when every output is on the host.
 * Failures (an unbound input, an out-of-range token id, a device error) complete the stage exceptionally; nothing is
 * thrown from {@code execute} except for a null argument. Implementations may run several graphs concurrently.
 */
public interface GraphExecutor {

    /**
     * @param graph  the graph; its {@code outputs()} are computed, every other node only as far as they need
     * @param inputs a value for every {@code Input} node, keyed by node id; types must match the nodes exactly
     * @return the values of {@code graph.outputs()}, in order
     */
    CompletionStage<List<HostTensor>> execute(OpGraph graph, Map<Integer, ? extends TensorValue> inputs);

    /** Blocks until {@link #execute} completes; unwraps its failure. For tests and command-line tools. */
    default List<HostTensor> executeNow(OpGraph graph, Map<Integer, ? extends TensorValue> inputs) {
        try {
            return execute(graph, inputs).toCompletableFuture().join();
        } catch (java.util.concurrent.CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw e;
        }
    }
}
