package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * {@link GgmlType#BF16}: 2-byte little-endian brain floats, the upper half of an f32. Widening is a shift; narrowing
 * is ggml's {@code ggml_compute_fp32_to_bf16} ({@link CFloat#floatToBf16}: nearest even, NaNs quieted).
 */
public final class BF16Codec implements BlockCodec {

    /** The scalar reference, always available; tests compare {@link #VECTOR} with it. */
    static final BF16Codec SCALAR = new BF16Codec(false);
    /** The Vector API path; needs {@code jdk.incubator.vector} ({@link Vectorization#available()}). */
    static final BF16Codec VECTOR = new BF16Codec(true);
    /** The codec to use: {@link #VECTOR} where {@link Vectorization#ENABLED}, else {@link #SCALAR}. */
    public static final BF16Codec INSTANCE = Vectorization.ENABLED ? VECTOR : SCALAR;

    private final boolean vectorized;

    private BF16Codec(boolean vectorized) {
        this.vectorized = vectorized;
    }

    @Override
    public GgmlType type() {
        return GgmlType.BF16;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        // Short-lane loads from a byte[]-backed heap segment are not intrinsified in JDK 25 (mismatched element
        // type) and run ~10x slower than this scalar loop; mapped and off-heap segments take the vector path.
        if (vectorized && src.isNative()) {
            VectorKernels.bf16(src, srcOffset, dst, dstIndex, count);
            return;
        }
        for (int i = 0; i < count; i++) {
            dst[dstIndex + i] = CFloat.bf16ToFloat(src.get(LittleEndian.SHORT, srcOffset + (long) i * Short.BYTES));
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        for (int i = 0; i < count; i++) {
            dst.set(LittleEndian.SHORT, dstOffset + (long) i * Short.BYTES, CFloat.floatToBf16(src[srcIndex + i]));
        }
    }
}
