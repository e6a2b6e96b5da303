package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/** {@link GgmlType#F64}: 8-byte little-endian binary64; narrowed to f32 with round-to-nearest-even. */
public final class F64Codec implements BlockCodec {

    public static final F64Codec INSTANCE = new F64Codec();

    private F64Codec() {}

    @Override
    public GgmlType type() {
        return GgmlType.F64;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        for (int i = 0; i < count; i++) {
            dst[dstIndex + i] = (float) src.get(LittleEndian.DOUBLE, srcOffset + (long) i * Double.BYTES);
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        for (int i = 0; i < count; i++) {
            dst.set(LittleEndian.DOUBLE, dstOffset + (long) i * Double.BYTES, src[srcIndex + i]);
        }
    }
}
