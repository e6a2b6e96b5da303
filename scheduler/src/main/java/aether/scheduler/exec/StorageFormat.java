package aether.scheduler.exec;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;
import aether.runtime.protocol.TensorBytes;
import aether.runtime.quant.BlockCodecs;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Values in their storage format, as tensors travel between segments and nodes: the dtype's ggml bytes, little-endian,
 * row-major with the last dimension contiguous (f32, f16, bf16, f64, i32; block types as 2-D weights [rows, cols]).
 * Converts them to and from the executors' {@link TensorValue}s.
 */
public final class StorageFormat {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private StorageFormat() {}

    /**
     * The value of {@code type} stored in {@code bytes}: a {@link HostTensor} (copied) for scalar types, a
     * {@link WeightTensor} reading {@code bytes} in place for block types.
     *
     * @throws IllegalArgumentException when the size does not match or no codec reads the block type
     */
    public static TensorValue decode(MemorySegment bytes, TensorType type) {
        long expected = TensorBytes.byteSize(type);
        if (bytes.byteSize() != expected) {
            throw new IllegalArgumentException("tensor " + type + ": " + bytes.byteSize() + " bytes (expected: "
                    + expected + ")");
        }
        Shape shape = type.shape();
        DType dtype = type.dtype();
        if (dtype.isQuantized()) {
            if (shape.rank() != 2) {
                throw new IllegalArgumentException("tensor " + type + ": block types are 2-D weights [rows, cols]");
            }
            var codec = BlockCodecs.find(dtype.ggml()).orElseThrow(() -> new IllegalArgumentException(
                    "tensor " + type + ": no codec reads " + dtype));
            return new WeightTensor(type, new CodecWeightRows(codec, bytes, shape.dim(0), shape.dim(1)));
        }
        int n = shape.sizeAsInt();
        double[] d = new double[n];
        switch (dtype.ggml()) {
            case F32 -> { for (int i = 0; i < n; i++) d[i] = bytes.getAtIndex(F32, i); }
            case F64 -> { for (int i = 0; i < n; i++) d[i] = bytes.getAtIndex(F64, i); }
            case I32 -> { for (int i = 0; i < n; i++) d[i] = bytes.getAtIndex(I32, i); }
            case F16 -> { for (int i = 0; i < n; i++) d[i] = Float.float16ToFloat(bytes.getAtIndex(I16, i)); }
            case BF16 -> { for (int i = 0; i < n; i++) d[i] = Float.intBitsToFloat(bytes.getAtIndex(I16, i) << 16); }
            default -> throw new IllegalArgumentException("tensor " + type + ": dtype " + dtype + " has no storage"
                    + " format here");
        }
        return HostTensor.wrap(type, d);
    }

    /** Writes {@code value} (a host tensor whose values are exact in its dtype) into {@code dst}. */
    public static void encode(HostTensor value, MemorySegment dst) {
        TensorType type = value.type();
        long expected = TensorBytes.byteSize(type);
        if (dst.byteSize() != expected) {
            throw new IllegalArgumentException("tensor " + type + ": destination of " + dst.byteSize()
                    + " bytes (expected: " + expected + ")");
        }
        double[] d = value.data();
        switch (type.dtype().ggml()) {
            case F32 -> { for (int i = 0; i < d.length; i++) dst.setAtIndex(F32, i, (float) d[i]); }
            case F64 -> { for (int i = 0; i < d.length; i++) dst.setAtIndex(F64, i, d[i]); }
            case I32 -> { for (int i = 0; i < d.length; i++) dst.setAtIndex(I32, i, (int) d[i]); }
            case F16 -> { for (int i = 0; i < d.length; i++) dst.setAtIndex(I16, i, Float.floatToFloat16((float) d[i])); }
            // bf16 values are already rounded, so truncating the float's low half is exact
            case BF16 -> { for (int i = 0; i < d.length; i++)
                dst.setAtIndex(I16, i, (short) (Float.floatToRawIntBits((float) d[i]) >>> 16)); }
            default -> throw new IllegalArgumentException("tensor " + type + " has no storage format here");
        }
    }

    /**
     * The storage bytes of a value bound to a graph: a host tensor's values, or the raw rows of a weight read from
     * memory ({@link CodecWeightRows}, {@link SegmentWeightRows}), copied.
     *
     * @throws IllegalArgumentException for weights whose rows are computed rather than stored
     */
    public static byte[] bytes(TensorValue value) {
        byte[] out = new byte[Math.toIntExact(TensorBytes.byteSize(value.type()))];
        MemorySegment dst = MemorySegment.ofArray(out);
        switch (value) {
            case HostTensor h -> encode(h, dst);
            case WeightTensor w when w.rows() instanceof CodecWeightRows c -> MemorySegment.copy(c.data(), 0, dst, 0,
                    out.length);
            case WeightTensor w when w.rows() instanceof SegmentWeightRows s -> MemorySegment.copy(s.data(), 0, dst, 0,
                    out.length);
            default -> throw new IllegalArgumentException("value " + value.type() + " of "
                    + value.getClass().getSimpleName() + " has no stored bytes (expected: a HostTensor, or a weight"
                    + " over memory: CodecWeightRows or SegmentWeightRows)");
        }
        return out;
    }
}
