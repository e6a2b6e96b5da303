package aether.device.worker;

import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.TensorRef;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One node's host-resident tensors by buffer id: the same-JVM hand-off between segments. A worker that produces a
 * tensor {@link #put}s its buffer here and tells the scheduler only its {@link TensorRef}; the next segment's worker on
 * this node {@link #get}s the very same {@code MemorySegment} (zero copy). Each entry has one owner, the store, and one
 * explicit {@link #release} (the scheduler's {@code ReleaseTensors} when no segment of the job needs it any more),
 * which runs the entry's free action (Netty's contract: whoever releases last frees).
 *
 * <p>Thread-safe. A tensor version is immutable: nobody writes a segment after {@code put}.
 */
public final class TensorStore {

    /** A stored tensor: its descriptor, its bytes and what frees them. */
    public record Entry(TensorRef ref, MemorySegment bytes, Runnable free) {
        public Entry {
            Objects.requireNonNull(ref, "ref");
            Objects.requireNonNull(bytes, "bytes");
            Objects.requireNonNull(free, "free");
            if (bytes.byteSize() != ref.byteSize()) {
                throw new IllegalArgumentException(ref + ": " + bytes.byteSize() + " bytes (expected: "
                        + ref.byteSize() + ")");
            }
        }
    }

    private final String nodeId;
    private final ConcurrentHashMap<BufferId, Holder> entries = new ConcurrentHashMap<>();
    /** Told each id {@link #release} frees: a GPU worker drops its device copy of a tensor nobody needs any more. */
    private final java.util.List<java.util.function.Consumer<BufferId>> releaseListeners =
            new java.util.concurrent.CopyOnWriteArrayList<>();

    public TensorStore(String nodeId) {
        this.nodeId = Objects.requireNonNull(nodeId, "nodeId");
    }

    /** The node whose memory this store holds; {@link TensorRef#nodeId()} of every entry. */
    public String nodeId() {
        return nodeId;
    }

    /**
     * Adds a tensor.
     *
     * @throws IllegalArgumentException when the ref names another node or the id is already stored
     */
    public void put(Entry entry) {
        if (!entry.ref().nodeId().equals(nodeId)) {
            throw new IllegalArgumentException(entry.ref() + " is not on node " + nodeId);
        }
        if (entries.putIfAbsent(entry.ref().id(), new Holder(entry)) != null) {
            throw new IllegalArgumentException(entry.ref().id() + " is already stored on " + nodeId);
        }
    }

    /**
     * Adds a tensor unless its id is already stored (e.g. two workers fetched the same remote tensor at once).
     *
     * @return false when the id was there: the caller still owns {@code entry} and frees it
     */
    public boolean putIfAbsent(Entry entry) {
        if (!entry.ref().nodeId().equals(nodeId)) {
            throw new IllegalArgumentException(entry.ref() + " is not on node " + nodeId);
        }
        return entries.putIfAbsent(entry.ref().id(), new Holder(entry)) == null;
    }

    /** The bytes of {@code ref} if this node holds that buffer at that version, else null. */
    public MemorySegment get(TensorRef ref) {
        Holder h = entries.get(ref.id());
        if (h == null || h.entry.ref().version() != ref.version()) {
            return null;
        }
        return h.entry.bytes();
    }

    /** The entry of {@code id}, or null. */
    public Entry entry(BufferId id) {
        Holder h = entries.get(id);
        return h == null ? null : h.entry;
    }

    /** Frees the buffers; unknown ids are ignored. Returns how many were freed. */
    public int release(List<BufferId> ids) {
        int freed = 0;
        for (BufferId id : ids) {
            Holder h = entries.remove(id);
            if (h != null && h.released.compareAndSet(false, true)) {
                h.entry.free().run();
                freed++;
                for (var listener : releaseListeners) {
                    listener.accept(id);
                }
            }
        }
        return freed;
    }

    /** {@code listener} is told every id {@link #release} frees from now on (on the releasing thread). */
    public void addReleaseListener(java.util.function.Consumer<BufferId> listener) {
        releaseListeners.add(Objects.requireNonNull(listener, "listener"));
    }

    public void removeReleaseListener(java.util.function.Consumer<BufferId> listener) {
        releaseListeners.remove(listener);
    }

    public int size() {
        return entries.size();
    }

    /** Bytes held. */
    public long bytes() {
        long sum = 0;
        for (Holder h : entries.values()) {
            sum += h.entry.bytes().byteSize();
        }
        return sum;
    }

    private static final class Holder {
        final Entry entry;
        final AtomicBoolean released = new AtomicBoolean();

        Holder(Entry entry) {
            this.entry = entry;
        }
    }
}
