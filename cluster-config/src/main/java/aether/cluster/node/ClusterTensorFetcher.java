package aether.cluster.node;

import aether.device.worker.TensorFetcher;
import aether.device.worker.TensorStore;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.TensorRef;
import aether.runtime.transfer.TensorRefs;
import aether.runtime.transfer.TensorService;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * Brings tensors from other nodes for this node's workers and scheduler: a {@link TensorService.Pull} to the node's
 * tensor service (the bytes cross on Aeron), then the pulled bytes leave the transfer store and become a worker-store
 * entry (this node, same id and version) that frees them when released. Concurrent fetches of one tensor share one
 * transfer; the first caller gets its bytes, the others a private copy, since each entry has exactly one owner.
 * A failed pull fails the future with a {@link TensorFetchException} naming the node. Thread-safe.
 */
final class ClusterTensorFetcher implements TensorFetcher {

    /** A pull that failed: names the node at fault. */
    static final class TensorFetchException extends RuntimeException {
        private final String nodeId;

        TensorFetchException(String nodeId, String message) {
            super(message);
            this.nodeId = nodeId;
        }

        String nodeId() {
            return nodeId;
        }
    }

    private record Key(long id, long version) {}

    /** A pulled tensor whose bytes the first taker owns. */
    private record Taken(aether.runtime.transfer.TensorStore.Stored stored, AtomicBoolean claimed) {}

    private final ActorSystem<?> system;
    private final ActorRef<TensorService.Command> service;
    private final aether.runtime.transfer.TensorStore transfers;
    private final String nodeId;
    private final Duration timeout;
    private final ConcurrentHashMap<Key, CompletableFuture<Taken>> inFlight = new ConcurrentHashMap<>();

    /**
     * @param transfers the transfer store the service pulls into
     * @param timeout   the longest a fetch may take (the service's answer and transfer timeouts, plus slack)
     */
    ClusterTensorFetcher(ActorSystem<?> system, ActorRef<TensorService.Command> service,
            aether.runtime.transfer.TensorStore transfers, Duration timeout) {
        this.system = system;
        this.service = service;
        this.transfers = transfers;
        this.nodeId = transfers.nodeId();
        this.timeout = timeout;
    }

    @Override
    public CompletableFuture<TensorStore.Entry> fetch(TensorRef ref) {
        Key key = new Key(ref.id().value(), ref.version());
        CompletableFuture<Taken> pull = inFlight.computeIfAbsent(key, k -> pull(ref, k));
        return pull.thenApply(taken -> entry(ref, taken));
    }

    private CompletableFuture<Taken> pull(TensorRef ref, Key key) {
        CompletableFuture<Taken> result = AskPattern.<TensorService.Command, TensorService.PullReply>ask(service,
                        replyTo -> new TensorService.Pull(TensorRefs.descriptor(ref), replyTo), timeout,
                        system.scheduler())
                .toCompletableFuture()
                .thenApply(reply -> switch (reply) {
                    case TensorService.Pulled pulled -> new Taken(transfers.take(key.id(), key.version())
                            .orElseThrow(() -> new TensorFetchException(pulled.fromNode(), ref + ": pulled from "
                                    + pulled.fromNode() + " but gone from the transfer store of " + nodeId)),
                            new AtomicBoolean());
                    case TensorService.PullFailed failed -> throw new TensorFetchException(failed.nodeId(),
                            "fetching " + ref + " failed: " + failed.reason());
                });
        result.whenComplete((taken, error) -> inFlight.remove(key, result));
        return result;
    }

    private TensorStore.Entry entry(TensorRef ref, Taken taken) {
        TensorRef here = new TensorRef(ref.id(), ref.version(), ref.type(), nodeId, Location.HOST);
        var stored = taken.stored();
        if (taken.claimed().compareAndSet(false, true)) {
            Arena owner = stored.owner();
            return new TensorStore.Entry(here, stored.data(), owner == null ? () -> {} : owner::close);
        }
        Arena copy = Arena.ofShared();     // a second fetcher of the same transfer: its own bytes, its own owner
        MemorySegment bytes = copy.allocate(Math.max(1, stored.data().byteSize()), 64).asSlice(0, stored.data().byteSize());
        MemorySegment.copy(stored.data(), 0, bytes, 0, bytes.byteSize());
        return new TensorStore.Entry(here, bytes, copy::close);
    }
}
