package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/** {@link GgmlType#F32}: 4-byte little-endian IEEE binary32 per element; both directions are bulk copies. */
public final class F32Codec implements BlockCodec {

    public static final F32Codec INSTANCE = new F32Codec();

    private F32Codec() {}

    @Override
    public GgmlType type() {
        return GgmlType.F32;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        MemorySegment.copy(src, LittleEndian.FLOAT, srcOffset, dst, dstIndex, count);
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        MemorySegment.copy(src, srcIndex, dst, LittleEndian.FLOAT, dstOffset, count);
    }
}
