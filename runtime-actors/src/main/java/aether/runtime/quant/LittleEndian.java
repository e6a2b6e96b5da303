package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Unaligned little-endian layouts: GGUF data is little-endian and blocks sit at any byte offset. */
final class LittleEndian {

    static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;
    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private LittleEndian() {}

    /** Unsigned byte at {@code offset}. */
    static int u8(MemorySegment s, long offset) {
        return s.get(BYTE, offset) & 0xFF;
    }

    static void putU8(MemorySegment s, long offset, int v) {
        s.set(BYTE, offset, (byte) v);
    }

    /** Unsigned little-endian 16-bit value at {@code offset}. */
    static int u16(MemorySegment s, long offset) {
        return s.get(SHORT, offset) & 0xFFFF;
    }

    /** Little-endian 32-bit value at {@code offset} (callers shift it with {@code >>>}, as C does on uint32_t). */
    static int u32(MemorySegment s, long offset) {
        return s.get(INT, offset);
    }

    /** Stores {@code v} as an f16 (round to nearest even, as GGML_FP32_TO_FP16) and returns the stored value. */
    static float putF16(MemorySegment s, long offset, float v) {
        short h = Float.floatToFloat16(v);
        s.set(SHORT, offset, h);
        return Float.float16ToFloat(h);
    }

    /** Reads a little-endian f16 at {@code offset} and widens it exactly. */
    static float f16(MemorySegment segment, long offset) {
        return Float.float16ToFloat(segment.get(SHORT, offset));
    }

    /** Rejects a count that is not whole blocks, naming the type (one check per call, not per block). */
    static void checkWholeBlocks(GgmlType type, long count) {
        if (count < 0 || count % type.blockSize() != 0) {
            throw new IllegalArgumentException("%s: element count %,d is not a non-negative multiple of the block size %d"
                    .formatted(type, count, type.blockSize()));
        }
    }
}
