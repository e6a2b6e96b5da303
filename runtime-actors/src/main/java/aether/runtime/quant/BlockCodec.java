package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Converts between f32 and one ggml block format. Implementations are stateless and thread-safe; they read and write
 * blocks in place in a {@link MemorySegment} (usually a slice of a mapped GGUF file) and never allocate per call.
 *
 * <p>Counts are in elements and must be a multiple of {@link GgmlType#blockSize()}; callers check shapes once at the
 * boundary (GGUF open, graph build), so codecs do not re-validate them on every call.
 */
public interface BlockCodec {

    /** The block format this codec reads and writes. */
    GgmlType type();

    /**
     * Expands {@code count} elements stored at {@code src[srcOffset..]} (bytes) into {@code dst[dstIndex..]}.
     */
    void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count);

    /** True if {@link #quantize} is implemented for this type. */
    default boolean canQuantize() {
        return false;
    }

    /**
     * Encodes {@code count} floats from {@code src[srcIndex..]} as blocks at {@code dst[dstOffset..]} (bytes), using
     * llama.cpp's reference quantizer for this type (no importance matrix).
     *
     * @throws UnsupportedOperationException if this type has no quantizer ({@link #canQuantize()} is false)
     */
    default void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        throw new UnsupportedOperationException("quantizing to " + type() + " is not supported");
    }
}
