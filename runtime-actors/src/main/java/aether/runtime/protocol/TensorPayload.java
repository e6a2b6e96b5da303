package aether.runtime.protocol;

import aether.runtime.ir.TensorType;
import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.util.Arrays;
import java.util.Objects;

/**
 * A tensor value in a job message: either its bytes inline (small inputs and results, or a client without an exchange)
 * or a {@link TensorRef} to bytes that already live on a node.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "kind")
@JsonSubTypes({
    @JsonSubTypes.Type(value = TensorPayload.Inline.class, name = "inline"),
    @JsonSubTypes.Type(value = TensorPayload.Stored.class, name = "stored")
})
public sealed interface TensorPayload {

    java.lang.foreign.ValueLayout.OfFloat LE_F32 = java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED
            .withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    java.lang.foreign.ValueLayout.OfInt LE_I32 = java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED
            .withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    TensorType type();

    /**
     * The bytes travel in the message (CBOR byte string), in the dtype's storage format, little-endian.
     *
     * @throws IllegalArgumentException if the length is not what the type needs
     */
    record Inline(TensorType type, byte[] bytes) implements TensorPayload {
        public Inline {
            Objects.requireNonNull(type, "type");
            Objects.requireNonNull(bytes, "bytes");
            long expected = TensorBytes.byteSize(type);
            if (bytes.length != expected) {
                throw new IllegalArgumentException("inline tensor " + type + ": " + bytes.length + " bytes (expected: "
                        + expected + ")");
            }
        }

        /** f32 values of {@code shape}, copied. */
        public static Inline ofFloats(float[] values, aether.runtime.ir.Shape shape) {
            TensorType type = new TensorType(shape, aether.runtime.ir.DType.F32);
            byte[] bytes = new byte[Math.multiplyExact(values.length, Float.BYTES)];
            java.lang.foreign.MemorySegment.copy(values, 0, java.lang.foreign.MemorySegment.ofArray(bytes), LE_F32, 0,
                    values.length);
            return new Inline(type, bytes);
        }

        /** I32 values of {@code shape} (token ids, positions), copied. */
        public static Inline ofInts(int[] values, aether.runtime.ir.Shape shape) {
            TensorType type = new TensorType(shape, aether.runtime.ir.DType.I32);
            byte[] bytes = new byte[Math.multiplyExact(values.length, Integer.BYTES)];
            java.lang.foreign.MemorySegment.copy(values, 0, java.lang.foreign.MemorySegment.ofArray(bytes), LE_I32, 0,
                    values.length);
            return new Inline(type, bytes);
        }

        /** The values of an f32 tensor, copied. */
        public float[] toFloats() {
            if (!type.dtype().equals(aether.runtime.ir.DType.F32)) {
                throw new IllegalStateException("inline tensor " + type + " is not f32");
            }
            float[] out = new float[bytes.length / Float.BYTES];
            java.lang.foreign.MemorySegment.copy(java.lang.foreign.MemorySegment.ofArray(bytes), LE_F32, 0, out, 0,
                    out.length);
            return out;
        }

        /** The values of an I32 tensor, copied. */
        public int[] toInts() {
            if (!type.dtype().equals(aether.runtime.ir.DType.I32)) {
                throw new IllegalStateException("inline tensor " + type + " is not i32");
            }
            int[] out = new int[bytes.length / Integer.BYTES];
            java.lang.foreign.MemorySegment.copy(java.lang.foreign.MemorySegment.ofArray(bytes), LE_I32, 0, out, 0,
                    out.length);
            return out;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Inline i && i.type.equals(type) && Arrays.equals(i.bytes, bytes);
        }

        @Override
        public int hashCode() {
            return type.hashCode() * 31 + Arrays.hashCode(bytes);
        }

        @Override
        public String toString() {
            return "Inline[" + type + ", " + bytes.length + " bytes]";
        }
    }

    /** The bytes stay on a node; the receiver reads or fetches them. */
    record Stored(TensorRef ref) implements TensorPayload {
        public Stored {
            Objects.requireNonNull(ref, "ref");
        }

        @Override
        public TensorType type() {
            return ref.type();
        }
    }
}
