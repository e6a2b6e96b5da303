package aether.scheduler.exec;

import aether.runtime.tensor.GgmlType;

/**
 * A 2-D weight [rows, cols] kept in its storage format (f32, f16, bf16 or a ggml block type), read one row at a time.
 * Executors dequantize a row into a scratch buffer just before they use it, so a quantized weight is never expanded in
 * memory. Implementations are immutable and safe to read from several threads.
 */
public interface WeightRows {

    GgmlType type();

    int rows();

    int cols();

    /**
     * Writes row {@code row} as floats into {@code dst[0..cols)}.
     *
     * @throws IndexOutOfBoundsException when {@code row} is not in {@code 0..rows-1} or {@code dst} is shorter than cols
     */
    void row(int row, float[] dst);

    /**
     * The rows in their storage format, contiguous with row stride {@code type().bytesFor(cols())}, when they live in
     * one segment: what a kernel that multiplies blocks in place (device-workers' Matmul) reads. Empty otherwise.
     */
    default java.util.Optional<java.lang.foreign.MemorySegment> storage() {
        return java.util.Optional.empty();
    }
}
