package aether.device.spi;

import aether.runtime.protocol.BufferId;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The device copies of runtime buffers that a device with its own memory (a GPU) keeps between segments, keyed by the
 * runtime's buffer id: a segment that reads a buffer held here reads this copy instead of uploading the host bytes
 * again. The host copy stays the tensor's reference copy (the worker still copies outputs back), so a copy here can be
 * dropped at any time it is not in use: when the memory manager evicts it, when the tensor is released, or when the
 * device needs room.
 *
 * <p>A copy in use by a segment ({@link #acquire} until {@link #release}) is never freed: an eviction asked for
 * meanwhile only marks it, and the last release frees it. Thread-safe; {@code free} runs outside the lock (a device may
 * hop to its own thread to free).
 */
public final class ResidentBuffers {

    private static final class Copy {
        final DeviceBuffer buffer;
        final long version;
        int uses;
        boolean evictWhenUnused;

        Copy(DeviceBuffer buffer, long version) {
            this.buffer = buffer;
            this.version = version;
        }
    }

    private final String device;
    private final Consumer<DeviceBuffer> free;
    /** Access order: least recently used first. */
    private final LinkedHashMap<BufferId, Copy> copies = new LinkedHashMap<>(16, 0.75f, true);
    private long bytes;
    private long hits;
    private long misses;
    private long kept;
    private long evicted;
    private long trimmed;

    /**
     * @param device names the device in messages
     * @param free   gives a dropped copy's memory back (the device's {@code free}; may be asynchronous)
     */
    public ResidentBuffers(String device, Consumer<DeviceBuffer> free) {
        this.device = Objects.requireNonNull(device, "device");
        this.free = Objects.requireNonNull(free, "free");
    }

    /**
     * The device copy of {@code id} at {@code version}, now in use until {@link #release}, or null when there is none
     * (or it is being evicted): the caller uploads. Counts a hit (an upload skipped) or a miss.
     */
    public synchronized DeviceBuffer acquire(BufferId id, long version) {
        Copy c = copies.get(id);
        if (c == null || c.evictWhenUnused || c.version != version) {
            misses++;
            return null;
        }
        c.uses++;
        hits++;
        return c.buffer;
    }

    /** Ends one use from {@link #acquire}; frees the copy when an eviction waited for it. */
    public void release(BufferId id) {
        DeviceBuffer drop = null;
        synchronized (this) {
            Copy c = copies.get(id);
            if (c == null || c.uses == 0) {
                throw new IllegalStateException(device + ": release of " + id + " without an acquire");
            }
            if (--c.uses == 0 && c.evictWhenUnused) {
                copies.remove(id);
                bytes -= c.buffer.byteSize();
                drop = c.buffer;
            }
        }
        if (drop != null) {
            free.accept(drop);
        }
    }

    /**
     * Keeps {@code buffer} (owned by the caller until now, holding {@code id} at {@code version}) as the device copy of
     * {@code id}, not in use.
     *
     * @return false when a copy of {@code id} is already held: the caller still owns {@code buffer} and frees it
     */
    public synchronized boolean adopt(BufferId id, long version, DeviceBuffer buffer) {
        Objects.requireNonNull(buffer, "buffer");
        if (copies.containsKey(id)) {
            return false;
        }
        copies.put(id, new Copy(buffer, version));
        bytes += buffer.byteSize();
        kept++;
        return true;
    }

    /**
     * Drops the copy of {@code id} (the memory manager evicted it, or the tensor was released): freed now, or by the
     * last {@link #release} when a segment is using it. Unknown ids are ignored.
     *
     * @return true when a copy was held
     */
    public boolean evict(BufferId id) {
        DeviceBuffer drop = null;
        synchronized (this) {
            Copy c = copies.get(id);
            if (c == null) {
                return false;
            }
            if (!c.evictWhenUnused) {
                evicted++;
            }
            if (c.uses > 0) {
                c.evictWhenUnused = true;
            } else {
                copies.remove(id);
                bytes -= c.buffer.byteSize();
                drop = c.buffer;
            }
        }
        if (drop != null) {
            free.accept(drop);
        }
        return true;
    }

    /**
     * Removes least recently used copies not in use until their sizes add up to {@code wanted} bytes or none is left,
     * for a device that ran out of memory. The caller frees them (synchronously, so that its next allocation sees the
     * room).
     */
    public synchronized List<DeviceBuffer> takeUnused(long wanted) {
        List<DeviceBuffer> taken = new ArrayList<>();
        long freed = 0;
        for (Iterator<Map.Entry<BufferId, Copy>> it = copies.entrySet().iterator(); it.hasNext() && freed < wanted; ) {
            Copy c = it.next().getValue();
            if (c.uses == 0) {
                it.remove();
                bytes -= c.buffer.byteSize();
                freed += c.buffer.byteSize();
                taken.add(c.buffer);
                trimmed++;
            }
        }
        return taken;
    }

    /** Frees every copy not in use (the device is closing); returns how many. */
    public int clear() {
        List<DeviceBuffer> taken = takeUnused(Long.MAX_VALUE);
        taken.forEach(free);
        return taken.size();
    }

    /** Whether a copy of {@code id} is held (in use or not, not yet marked for eviction). */
    public synchronized boolean holds(BufferId id) {
        Copy c = copies.get(id);
        return c != null && !c.evictWhenUnused;
    }

    /** Copies held now. */
    public synchronized int size() {
        return copies.size();
    }

    /** Bytes of the copies held now. */
    public synchronized long bytes() {
        return bytes;
    }

    /** Reads that found their copy here (uploads skipped). */
    public synchronized long hits() {
        return hits;
    }

    /** Reads that found none (the caller uploaded). */
    public synchronized long misses() {
        return misses;
    }

    /** Copies adopted so far. */
    public synchronized long kept() {
        return kept;
    }

    /** Copies dropped on request (memory-manager evictions and released tensors). */
    public synchronized long evicted() {
        return evicted;
    }

    /** Copies dropped to make room for an allocation ({@link #takeUnused}). */
    public synchronized long trimmed() {
        return trimmed;
    }

    @Override
    public synchronized String toString() {
        return device + " resident: " + copies.size() + " copies, " + bytes + " bytes, " + hits + " hits, " + misses
                + " misses, " + evicted + " evicted, " + trimmed + " trimmed";
    }
}
