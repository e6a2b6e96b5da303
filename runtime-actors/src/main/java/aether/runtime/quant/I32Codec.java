package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * {@link GgmlType#I32}: 4-byte little-endian two's-complement integers, converted to f32 on read. Values beyond 2^24 round to the nearest f32 (ties to even), as C's conversion does. There is no
 * quantizer: ggml never converts floats to integer tensors.
 */
public final class I32Codec implements BlockCodec {

    public static final I32Codec INSTANCE = new I32Codec();

    private I32Codec() {}

    @Override
    public GgmlType type() {
        return GgmlType.I32;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        for (int i = 0; i < count; i++) {
            dst[dstIndex + i] = src.get(LittleEndian.INT, srcOffset + (long) i * Integer.BYTES);
        }
    }
}
