package aether.scheduler.exec;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A test-only {@link WeightRows} over ggml Q8_0 blocks (f16 scale d, then 32 int8; value = d * q), quantized with
 * ggml's quantize_row_q8_0_ref rule (d = amax / 127, q = round(x / d)). Stands in for the codec library.
 */
final class Q8_0Rows implements WeightRows {

    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 34;

    private final MemorySegment blocks;
    private final int rows;
    private final int cols;
    int rowReads;

    private Q8_0Rows(MemorySegment blocks, int rows, int cols) {
        this.blocks = blocks;
        this.rows = rows;
        this.cols = cols;
    }

    static Q8_0Rows quantize(float[] values, int rows, int cols) {
        MemorySegment s = MemorySegment.ofArray(new byte[rows * cols / BLOCK * BLOCK_BYTES]);
        for (int b = 0; b < rows * cols / BLOCK; b++) {
            float amax = 0;
            for (int i = 0; i < BLOCK; i++) amax = Math.max(amax, Math.abs(values[b * BLOCK + i]));
            float d = amax / 127;
            float id = d != 0 ? 1 / d : 0;
            long at = (long) b * BLOCK_BYTES;
            s.set(F16, at, Float.floatToFloat16(d));
            for (int i = 0; i < BLOCK; i++) {
                s.set(ValueLayout.JAVA_BYTE, at + 2 + i, (byte) Math.round(values[b * BLOCK + i] * id));
            }
        }
        return new Q8_0Rows(s, rows, cols);
    }

    @Override
    public GgmlType type() {
        return GgmlType.Q8_0;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    @Override
    public void row(int row, float[] dst) {
        rowReads++;
        long at = (long) row * (cols / BLOCK) * BLOCK_BYTES;
        for (int b = 0; b < cols / BLOCK; b++, at += BLOCK_BYTES) {
            float d = Float.float16ToFloat(blocks.get(F16, at));
            for (int i = 0; i < BLOCK; i++) {
                dst[b * BLOCK + i] = d * blocks.get(ValueLayout.JAVA_BYTE, at + 2 + i);
            }
        }
    }
}
