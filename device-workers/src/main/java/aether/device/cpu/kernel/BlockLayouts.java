package aether.device.cpu.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * ggml block layouts the kernels read (ggml/src/ggml-common.h), as byte offsets inside one block, and the unaligned
 * little-endian accessors for them. GGUF data is little-endian and only byte-aligned inside a mapped file.
 */
final class BlockLayouts {
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** block_q8_0: {@code ggml_half d; int8_t qs[32];} — value = d * qs[j]. */
    static final int Q8_0_BYTES = 34;
    static final int Q8_0_QS = 2;
    /** block_q4_0: {@code ggml_half d; uint8_t qs[16];} — j<16: (qs[j] & 0xF) - 8, j≥16: (qs[j-16] >> 4) - 8. */
    static final int Q4_0_BYTES = 18;
    static final int Q4_0_QS = 2;

    private BlockLayouts() {}

    static float f16(MemorySegment s, long offset) {
        return Float.float16ToFloat(s.get(I16, offset));
    }
}
