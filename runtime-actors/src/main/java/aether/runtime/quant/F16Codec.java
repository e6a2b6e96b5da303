package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * {@link GgmlType#F16}: 2-byte little-endian IEEE binary16 per element. Widening is exact; narrowing rounds to nearest
 * even ({@link Float#floatToFloat16}), as ggml's {@code GGML_FP32_TO_FP16} does (F16C {@code vcvtps2ph}, mode 0).
 */
public final class F16Codec implements BlockCodec {

    /** The scalar reference, always available; tests compare {@link #VECTOR} with it. */
    static final F16Codec SCALAR = new F16Codec(false);
    /** The Vector API path; needs {@code jdk.incubator.vector} ({@link Vectorization#available()}). */
    static final F16Codec VECTOR = new F16Codec(true);
    /** The codec to use: {@link #VECTOR} where {@link Vectorization#ENABLED}, else {@link #SCALAR}. */
    public static final F16Codec INSTANCE = Vectorization.ENABLED ? VECTOR : SCALAR;

    private final boolean vectorized;

    private F16Codec(boolean vectorized) {
        this.vectorized = vectorized;
    }

    @Override
    public GgmlType type() {
        return GgmlType.F16;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        if (vectorized) {
            VectorKernels.f16(src, srcOffset, dst, dstIndex, count);
            return;
        }
        for (int i = 0; i < count; i++) {
            dst[dstIndex + i] = LittleEndian.f16(src, srcOffset + (long) i * Short.BYTES);
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        for (int i = 0; i < count; i++) {
            dst.set(LittleEndian.SHORT, dstOffset + (long) i * Short.BYTES, Float.floatToFloat16(src[srcIndex + i]));
        }
    }
}
