package aether.runtime.exchange;

import aether.runtime.tensor.GgmlType;
import java.util.List;
import java.util.Objects;

/**
 * What an actor message says about a tensor whose bytes travel separately: which tensor and version, its element type
 * and shape, how many bytes, and where the bytes can be fetched. Plain data (records, strings, numbers) so it
 * serializes with Jackson as it is; it never holds the bytes or a handle to them.
 *
 * @param tensorId   the tensor's id, unique in its job or model
 * @param version    the tensor's version; a version's bytes never change (a write makes a new version)
 * @param type       the ggml type name as in {@link GgmlType} ({@code "F32"}, {@code "Q4_0"}, ...)
 * @param shape      dimensions in ggml order ({@code shape.get(0)} is the row length); empty for a scalar
 * @param byteLength the payload's size in bytes, which must be what {@code type} and {@code shape} need
 * @param location   where the bytes are
 * @throws IllegalArgumentException if the type is unknown, a dimension is negative, rows are not whole blocks or the
 *                                  byte length does not match the shape
 */
public record TensorDescriptor(long tensorId, long version, String type, List<Long> shape, long byteLength,
        Location location) {

    /**
     * Where a tensor's bytes are.
     *
     * @param nodeId   the node that holds the bytes
     * @param channel  the Aeron channel to fetch them from ({@code aeron:ipc...}, {@code aeron:udp?endpoint=...}), or
     *                 {@link #LOCAL} for a buffer handed over inside one JVM
     * @param streamId the Aeron stream id (0 for {@link #LOCAL})
     */
    public record Location(String nodeId, String channel, int streamId) {

        /** The channel name of a same-JVM hand-off. */
        public static final String LOCAL = "local";

        public Location {
            Objects.requireNonNull(nodeId, "nodeId");
            Objects.requireNonNull(channel, "channel");
            if (!channel.equals(LOCAL) && !channel.startsWith("aeron:")) {
                throw new IllegalArgumentException(
                        "channel: '%s' (expected: 'local' or an aeron: URI)".formatted(channel));
            }
        }

        public static Location local(String nodeId) {
            return new Location(nodeId, LOCAL, 0);
        }

        /** True for a same-JVM hand-off. (Not {@code isLocal}: Jackson would take that for a property.) */
        public boolean inProcess() {
            return channel.equals(LOCAL);
        }
    }

    public TensorDescriptor {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(location, "location");
        shape = List.copyOf(Objects.requireNonNull(shape, "shape"));
        GgmlType ggml = GgmlType.byName(type).orElseThrow(() -> new IllegalArgumentException(
                "tensor %d v%d: type '%s' (expected: a ggml type name such as F32 or Q4_0)".formatted(tensorId, version, type)));
        long[] ne = new long[shape.size()];
        for (int i = 0; i < ne.length; i++) {
            ne[i] = shape.get(i);
        }
        long expected;
        try {
            expected = ggml.bytesFor(ne);
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw new IllegalArgumentException("tensor %d v%d: shape %s: %s".formatted(tensorId, version, shape,
                    e.getMessage()), e);
        }
        if (byteLength != expected) {
            throw new IllegalArgumentException("tensor %d v%d: byteLength %,d (expected: %,d for %s %s)"
                    .formatted(tensorId, version, byteLength, expected, type, shape));
        }
    }

    /** A descriptor whose byte length is computed from the type and shape. */
    public static TensorDescriptor of(long tensorId, long version, GgmlType type, List<Long> shape, Location location) {
        long[] ne = shape.stream().mapToLong(Long::longValue).toArray();
        return new TensorDescriptor(tensorId, version, type.name(), shape, type.bytesFor(ne), location);
    }

    /** The element type. */
    public GgmlType ggmlType() {
        return GgmlType.byName(type).orElseThrow();
    }
}
