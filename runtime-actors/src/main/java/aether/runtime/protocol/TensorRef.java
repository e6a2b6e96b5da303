package aether.runtime.protocol;

import aether.runtime.ir.TensorType;
import java.util.Objects;

/**
 * The descriptor of a tensor whose bytes stay where they are: which buffer and version, its type (shape in NumPy order,
 * dtype), the node whose memory holds it and where on that node. Messages carry this, never the bytes; a worker on the
 * same node reads the very same buffer (zero copy), a worker elsewhere fetches the bytes over the exchange.
 *
 * <p>The bytes are the dtype's ggml storage format, little-endian, rows contiguous (row-major with the last dimension
 * contiguous): {@link #byteSize()} of them.
 *
 * @param id       the buffer
 * @param version  the buffer's version; a version's bytes never change
 * @param type     shape and dtype
 * @param nodeId   the node that holds the bytes (its exchange address is known from the node id)
 * @param location where on that node: host memory or a device's memory
 */
public record TensorRef(BufferId id, long version, TensorType type, String nodeId, Location location) {

    public TensorRef {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(nodeId, "nodeId");
        Objects.requireNonNull(location, "location");
        if (version < 0) {
            throw new IllegalArgumentException(id + ": version " + version + " (expected: 0+)");
        }
        TensorBytes.byteSize(type);   // rows must be whole blocks
    }

    /** The payload size in bytes. */
    public long byteSize() {
        return TensorBytes.byteSize(type);
    }

    @Override
    public String toString() {
        return id + "v" + version + " " + type + "@" + nodeId + "/" + location;
    }
}
