package aether.scheduler.exec;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * {@link WeightRows} over little-endian f32, f16 or bf16 data in a {@link MemorySegment} (for example a slice of a mapped
 * GGUF file). Block types are decoded by the codec library, which plugs in through the same interface.
 */
public final class SegmentWeightRows implements WeightRows {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(
            java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(
            java.nio.ByteOrder.LITTLE_ENDIAN);

    private final GgmlType type;
    private final MemorySegment data;
    private final int rows;
    private final int cols;

    public SegmentWeightRows(GgmlType type, MemorySegment data, int rows, int cols) {
        this.type = Objects.requireNonNull(type, "type");
        this.data = Objects.requireNonNull(data, "data");
        if (type != GgmlType.F32 && type != GgmlType.F16 && type != GgmlType.BF16) {
            throw new IllegalArgumentException("SegmentWeightRows reads f32, f16 or bf16 (found " + type
                    + "; block types come from the codec library)");
        }
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("weight shape [" + rows + ", " + cols + "] (expected: dims >= 0)");
        }
        long need = type.bytesFor(Math.multiplyExact((long) rows, cols));
        if (data.byteSize() != need) {
            throw new IllegalArgumentException("weight " + type + "[" + rows + ", " + cols + "] needs " + need
                    + " bytes, segment has " + data.byteSize());
        }
        this.rows = rows;
        this.cols = cols;
    }

    /** F32 rows copied from a Java array (tests, small constants). */
    public static SegmentWeightRows ofF32(float[] values, int rows, int cols) {
        MemorySegment s = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, Float.BYTES)]);
        for (int i = 0; i < values.length; i++) {
            s.setAtIndex(F32, i, values[i]);
        }
        return new SegmentWeightRows(GgmlType.F32, s, rows, cols);
    }

    /** F16 rows rounded from floats (round to nearest even). */
    public static SegmentWeightRows ofF16(float[] values, int rows, int cols) {
        MemorySegment s = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, 2)]);
        for (int i = 0; i < values.length; i++) {
            s.setAtIndex(I16, i, Float.floatToFloat16(values[i]));
        }
        return new SegmentWeightRows(GgmlType.F16, s, rows, cols);
    }

    @Override
    public GgmlType type() {
        return type;
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
        Objects.checkIndex(row, rows);
        if (dst.length < cols) {
            throw new IndexOutOfBoundsException("row buffer of " + dst.length + " floats, row has " + cols);
        }
        long base = (long) row * cols;
        switch (type) {
            case F32 -> {
                for (int c = 0; c < cols; c++) {
                    dst[c] = data.getAtIndex(F32, base + c);
                }
            }
            case F16 -> {
                for (int c = 0; c < cols; c++) {
                    dst[c] = Float.float16ToFloat(data.getAtIndex(I16, base + c));
                }
            }
            case BF16 -> {
                for (int c = 0; c < cols; c++) {
                    dst[c] = Float.intBitsToFloat((data.getAtIndex(I16, base + c) & 0xffff) << 16);
                }
            }
            default -> throw new IllegalStateException(type.name());
        }
    }

    /** The rows' bytes as stored (a view, not a copy). */
    public MemorySegment data() {
        return data;
    }
}
