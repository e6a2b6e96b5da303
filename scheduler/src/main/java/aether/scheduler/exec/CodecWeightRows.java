package aether.scheduler.exec;

import aether.runtime.quant.BlockCodec;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * {@link WeightRows} over a weight in any ggml block format, decoded by its {@link BlockCodec} one row at a time. The
 * segment holds {@code rows} rows of {@code cols} elements each, row-major, exactly as in a GGUF tensor (ggml's ne[0] =
 * cols). Checked once here: the row is whole blocks and the segment has exactly the bytes the shape needs.
 */
public final class CodecWeightRows implements WeightRows {

    private final BlockCodec codec;
    private final MemorySegment data;
    private final int rows;
    private final int cols;
    private final long rowBytes;

    public CodecWeightRows(BlockCodec codec, MemorySegment data, int rows, int cols) {
        this.codec = Objects.requireNonNull(codec, "codec");
        this.data = Objects.requireNonNull(data, "data");
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("weight shape [" + rows + ", " + cols + "] (expected: dims >= 0)");
        }
        GgmlType type = codec.type();
        this.rowBytes = type.bytesFor(cols);   // throws when a row is not whole blocks
        long need = Math.multiplyExact(rowBytes, (long) rows);
        if (data.byteSize() != need) {
            throw new IllegalArgumentException("weight " + type + "[" + rows + ", " + cols + "] needs " + need
                    + " bytes, segment has " + data.byteSize());
        }
        this.rows = rows;
        this.cols = cols;
    }

    @Override
    public GgmlType type() {
        return codec.type();
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
        codec.dequantize(data, row * rowBytes, dst, 0, cols);
    }

    /** The rows' bytes as stored (a view, not a copy). */
    public MemorySegment data() {
        return data;
    }
}
