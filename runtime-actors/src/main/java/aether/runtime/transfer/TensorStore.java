package aether.runtime.transfer;

import aether.runtime.exchange.TensorDescriptor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The tensor versions held in this node's memory, by (tensor id, version). In-process code (workers, the client) puts
 * and reads segments here directly, with no copy; the node's {@link TensorService} serves them to other nodes and puts
 * what it pulls from them here.
 *
 * <p>Ownership: a tensor put with {@link #put(TensorDescriptor, MemorySegment)} stays owned by the caller, who keeps
 * the segment alive and unmodified until it {@link #remove}s it; one put with {@link #putOwned} (what the service does
 * with pulled bytes) is freed by {@link #remove} or {@link #close}. A version's bytes never change, so readers may
 * use a segment without locking as long as they do not race a remove of the same version. Thread-safe.
 */
public final class TensorStore implements AutoCloseable {

    /** A stored tensor: its descriptor (location: this node), its bytes, and the arena that owns them if the store does. */
    public record Stored(TensorDescriptor descriptor, MemorySegment data, Arena owner) {
        public Stored {
            Objects.requireNonNull(descriptor, "descriptor");
            Objects.requireNonNull(data, "data");
            if (data.byteSize() != descriptor.byteLength()) {
                throw new IllegalArgumentException("tensor %d v%d: segment of %,d bytes (expected: %,d for %s %s)"
                        .formatted(descriptor.tensorId(), descriptor.version(), data.byteSize(),
                                descriptor.byteLength(), descriptor.type(), descriptor.shape()));
            }
        }
    }

    private record Key(long tensorId, long version) {}

    private final String nodeId;
    private final ConcurrentHashMap<Key, Stored> tensors = new ConcurrentHashMap<>();

    /** @param nodeId this node's id: descriptors of stored tensors name it as their location */
    public TensorStore(String nodeId) {
        this.nodeId = Objects.requireNonNull(nodeId, "nodeId");
    }

    public String nodeId() {
        return nodeId;
    }

    /**
     * Stores a tensor the caller owns. The stored descriptor is {@code descriptor} located at this node.
     *
     * @throws IllegalArgumentException if the segment's size is not the descriptor's byte length
     * @throws IllegalStateException    if that tensor version is already stored (versions are immutable)
     */
    public TensorDescriptor put(TensorDescriptor descriptor, MemorySegment data) {
        return add(descriptor, data, null);
    }

    /** As {@link #put}, but the store owns {@code owner} (which holds {@code data}) and closes it on remove. */
    public TensorDescriptor putOwned(TensorDescriptor descriptor, MemorySegment data, Arena owner) {
        return add(descriptor, data, Objects.requireNonNull(owner, "owner"));
    }

    private TensorDescriptor add(TensorDescriptor descriptor, MemorySegment data, Arena owner) {
        TensorDescriptor here = locatedHere(descriptor);
        Stored stored = new Stored(here, data, owner);
        Stored previous = tensors.putIfAbsent(new Key(here.tensorId(), here.version()), stored);
        if (previous != null) {
            throw new IllegalStateException("tensor %d v%d is already stored on %s (a version's bytes never change: "
                    .formatted(here.tensorId(), here.version(), nodeId) + "write a new version)");
        }
        return here;
    }

    /** The descriptor with its location set to this node (the channel says "local": the bytes are in this JVM). */
    public TensorDescriptor locatedHere(TensorDescriptor descriptor) {
        TensorDescriptor.Location location = descriptor.location();
        if (location.nodeId().equals(nodeId) && location.inProcess()) {
            return descriptor;
        }
        return new TensorDescriptor(descriptor.tensorId(), descriptor.version(), descriptor.type(), descriptor.shape(),
                descriptor.byteLength(), TensorDescriptor.Location.local(nodeId));
    }

    public Optional<Stored> get(long tensorId, long version) {
        return Optional.ofNullable(tensors.get(new Key(tensorId, version)));
    }

    public boolean contains(long tensorId, long version) {
        return tensors.containsKey(new Key(tensorId, version));
    }

    /** Forgets the tensor version, freeing its bytes if the store owns them. True if it was stored. */
    public boolean remove(long tensorId, long version) {
        Stored s = tensors.remove(new Key(tensorId, version));
        if (s == null) {
            return false;
        }
        if (s.owner() != null) {
            s.owner().close();
        }
        return true;
    }

    /**
     * Takes the tensor version out of the store without freeing it: the caller now owns its bytes (and its
     * {@link Stored#owner()} arena, if the store owned one, which the caller must close).
     */
    public Optional<Stored> take(long tensorId, long version) {
        return Optional.ofNullable(tensors.remove(new Key(tensorId, version)));
    }

    /** Tensor versions stored, and the bytes they hold. */
    public int size() {
        return tensors.size();
    }

    public long bytes() {
        long total = 0;
        for (Stored s : tensors.values()) {
            total += s.data().byteSize();
        }
        return total;
    }

    /** Frees everything the store owns and forgets every tensor. */
    @Override
    public void close() {
        List<Key> keys = new ArrayList<>(tensors.keySet());
        for (Key k : keys) {
            remove(k.tensorId(), k.version());
        }
    }
}
