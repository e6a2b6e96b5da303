package aether.device.worker;

import aether.runtime.protocol.TensorRef;
import java.util.concurrent.CompletableFuture;

/**
 * Brings a tensor that lives on another node into this node's memory (over the Aeron exchange, in the cluster
 * module). The future's entry (descriptor: this node, same id and version) is put into the worker's
 * {@link TensorStore}, so later segments on this node find it; it is freed with the store's other entries. Never
 * called for tensors already on this node.
 */
@FunctionalInterface
public interface TensorFetcher {

    CompletableFuture<TensorStore.Entry> fetch(TensorRef ref);

    /** For a single-node runtime: any tensor from elsewhere is an error that names it. */
    static TensorFetcher localOnly(String nodeId) {
        return ref -> CompletableFuture.failedFuture(new IllegalStateException(ref + " is on node " + ref.nodeId()
                + ", not on " + nodeId + ", and this worker has no exchange to fetch it"));
    }
}
