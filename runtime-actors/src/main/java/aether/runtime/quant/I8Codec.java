package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * {@link GgmlType#I8}: 1-byte little-endian two's-complement integers, converted to f32 on read. There is no
 * quantizer: ggml never converts floats to integer tensors.
 */
public final class I8Codec implements BlockCodec {

    public static final I8Codec INSTANCE = new I8Codec();

    private I8Codec() {}

    @Override
    public GgmlType type() {
        return GgmlType.I8;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        for (int i = 0; i < count; i++) {
            dst[dstIndex + i] = src.get(LittleEndian.BYTE, srcOffset + i);
        }
    }
}
