package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * {@link GgmlType#I16}: 2-byte little-endian two's-complement integers, converted to f32 on read. There is no
 * quantizer: ggml never converts floats to integer tensors.
 */
public final class I16Codec implements BlockCodec {

    public static final I16Codec INSTANCE = new I16Codec();

    private I16Codec() {}

    @Override
    public GgmlType type() {
        return GgmlType.I16;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        for (int i = 0; i < count; i++) {
            dst[dstIndex + i] = src.get(LittleEndian.SHORT, srcOffset + (long) i * Short.BYTES);
        }
    }
}
