package aether.scheduler.compile;

import aether.device.cpu.kernel.PackedWeights;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

/**
 * Weights prepared once for the matmul kernels ({@link PackedWeights#prepare}: Q4_0 repacked for the int16 decode
 * kernel, other types wrapped in place) and shared by every {@link KernelGraph} of one model, so a new batch shape
 * compiles without repacking. Keyed by the weight's storage (address, size) and shape. The packed copies live in this
 * cache's arena: close it only after every graph that uses it. A mapped source that no multiply reads after the repack
 * is unloaded ({@link MemorySegment#unload()}: its pages leave the resident set, a later read faults them in again).
 * Not thread-safe (graphs are compiled on one thread).
 */
public final class PackedWeightCache implements AutoCloseable {

    private record Key(long address, long size, GgmlType type, int rows, int cols) {}

    private final Arena arena = Arena.ofShared();
    private final Map<Key, PackedWeights> prepared = new HashMap<>();
    private long packedBytes;

    /** The prepared form of {@code weights} ({@code rows × cols} of {@code type}), preparing it on first use. */
    public PackedWeights get(GgmlType type, MemorySegment weights, int rows, int cols) {
        Key key = new Key(weights.address(), weights.byteSize(), type, rows, cols);
        PackedWeights p = prepared.get(key);
        if (p == null) {
            p = PackedWeights.prepare(type, weights, rows, cols, arena);
            packedBytes += p.packedBytes();
            prepared.put(key, p);
            if (!p.readsSource() && weights.isMapped()) {
                // the repack read every page of the mapped source and no multiply reads it again: drop those pages
                // from this process's resident set (the page cache keeps them), so the weights are resident once
                weights.unload();
            }
        }
        return p;
    }

    /** Bytes of repacked copies held (0 when every weight is read in place). */
    public long packedBytes() {
        return packedBytes;
    }

    @Override
    public void close() {
        prepared.clear();
        arena.close();
    }
}
