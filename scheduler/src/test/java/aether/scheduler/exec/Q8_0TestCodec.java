package aether.scheduler.exec;

import aether.runtime.quant.BlockCodec;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A test-only Q8_0 {@link BlockCodec} standing in for the codec library: ggml's 34-byte block (f16 scale d, then 32
 * int8; value = d * q), quantized with quantize_row_q8_0_ref's rule (d = amax / 127, q = round(x / d)).
 */
final class Q8_0TestCodec implements BlockCodec {

    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 34;

    @Override
    public GgmlType type() {
        return GgmlType.Q8_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, float[] dst, int dstIndex, int count) {
        long at = srcOffset;
        for (int b = 0; b < count / BLOCK; b++, at += BLOCK_BYTES) {
            float d = Float.float16ToFloat(src.get(F16, at));
            for (int i = 0; i < BLOCK; i++) {
                dst[dstIndex + b * BLOCK + i] = d * src.get(ValueLayout.JAVA_BYTE, at + 2 + i);
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcIndex, int count, MemorySegment dst, long dstOffset) {
        for (int b = 0; b < count / BLOCK; b++) {
            float amax = 0;
            for (int i = 0; i < BLOCK; i++) amax = Math.max(amax, Math.abs(src[srcIndex + b * BLOCK + i]));
            float d = amax / 127;
            float id = d != 0 ? 1 / d : 0;
            long at = dstOffset + (long) b * BLOCK_BYTES;
            dst.set(F16, at, Float.floatToFloat16(d));
            for (int i = 0; i < BLOCK; i++) {
                dst.set(ValueLayout.JAVA_BYTE, at + 2 + i, (byte) Math.round(src[srcIndex + b * BLOCK + i] * id));
            }
        }
    }

    /** Quantizes a [rows, cols] matrix into weight rows backed by Q8_0 blocks. */
    static CodecWeightRows weight(float[] values, int rows, int cols) {
        Q8_0TestCodec codec = new Q8_0TestCodec();
        MemorySegment s = MemorySegment.ofArray(new byte[(int) GgmlType.Q8_0.bytesFor((long) rows * cols)]);
        codec.quantize(values, 0, values.length, s, 0);
        return new CodecWeightRows(codec, s, rows, cols);
    }
}
