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

    /** block_q4_1: {@code ggml_half d, m; uint8_t qs[16];} — nibbles as Q4_0, unsigned; value = d * q + m. */
    static final int Q4_1_BYTES = 20;
    static final int Q4_1_M = 2;
    static final int Q4_1_QS = 4;
    /**
     * block_q5_0: {@code ggml_half d; uint8_t qh[4]; uint8_t qs[16];} — element j's low 4 bits are Q4_0's nibble,
     * its 5th bit is bit j of the little-endian uint32 qh; value = d * (q - 16).
     */
    static final int Q5_0_BYTES = 22;
    static final int Q5_0_QH = 2;
    static final int Q5_0_QS = 6;
    /** block_q5_1: {@code ggml_half d, m; uint8_t qh[4]; uint8_t qs[16];} — 5-bit q as Q5_0, value = d * q + m. */
    static final int Q5_1_BYTES = 24;
    static final int Q5_1_M = 2;
    static final int Q5_1_QH = 4;
    static final int Q5_1_QS = 8;
    /**
     * block_q4_K (256 elements): {@code ggml_half d, dmin; uint8_t scales[12]; uint8_t qs[128];} — 8 sub-blocks of
     * 32 with 6-bit scale sc and min m packed in scales (get_scale_min_k4); each 32-byte group of qs holds sub-block
     * 2k in its low nibbles and 2k+1 in its high nibbles; value = d·sc·q − dmin·m.
     */
    static final int Q4_K_BYTES = 144;
    static final int Q4_K_DMIN = 2;
    static final int Q4_K_SCALES = 4;
    static final int Q4_K_QS = 16;
    /**
     * block_q6_K (256 elements): {@code uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d;} — two
     * halves of 128; in a half, for l &lt; 32, elements l, l+32, l+64, l+96 take the low nibble of ql[l], ql[l+32],
     * the high nibble of ql[l], ql[l+32], and bits 0-1, 2-3, 4-5, 6-7 of qh[l] as bits 4-5; q is that minus 32;
     * each 16 elements have their own int8 scale; value = d·sc·q.
     */
    static final int Q6_K_BYTES = 210;
    static final int Q6_K_QH = 128;
    static final int Q6_K_SCALES = 192;
    static final int Q6_K_D = 208;

    /**
     * block_q5_K (256): {@code ggml_half d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128];} — Q4_K plus a
     * 5th bit: in 64-element group g, element l of sub-block 2g takes bit 2g of qh[l], of sub-block 2g+1 bit 2g+1.
     */
    static final int Q5_K_BYTES = 176;
    static final int Q5_K_QH = 16;
    static final int Q5_K_QS = 48;
    /**
     * block_q2_K (256): {@code uint8_t scales[16]; uint8_t qs[64]; ggml_half d, dmin;} — 2-bit q; each 16 elements
     * have a 4-bit scale (low nibble) and 4-bit min (high nibble); value = d·sc·q − dmin·m.
     */
    static final int Q2_K_BYTES = 84;
    static final int Q2_K_QS = 16;
    static final int Q2_K_D = 80;
    static final int Q2_K_DMIN = 82;
    /**
     * block_q3_K (256): {@code uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; ggml_half d;} — 2 low bits in
     * qs, the 3rd in hmask (set means +0, clear means −4), 16 packed 6-bit scales biased by 32.
     */
    static final int Q3_K_BYTES = 110;
    static final int Q3_K_QS = 32;
    static final int Q3_K_SCALES = 96;
    static final int Q3_K_D = 108;
    /** block_iq4_nl (32): {@code ggml_half d; uint8_t qs[16];} — nibbles (Q4_0 order) index {@link #IQ4_NL_VALUES}. */
    static final int IQ4_NL_BYTES = 18;
    static final int IQ4_NL_QS = 2;
    /**
     * block_iq4_xs (256): {@code ggml_half d; uint16_t scales_h; uint8_t scales_l[4]; uint8_t qs[128];} — 8
     * sub-blocks of 32 laid out as IQ4_NL, each with a 6-bit scale (low 4 bits in scales_l, high 2 in scales_h)
     * biased by 32.
     */
    static final int IQ4_XS_BYTES = 136;
    static final int IQ4_XS_SCALES_H = 2;
    static final int IQ4_XS_SCALES_L = 4;
    static final int IQ4_XS_QS = 8;
    /** kvalues_iq4nl: the non-linear 4-bit codebook of IQ4_NL and IQ4_XS. */
    static final int[] IQ4_NL_VALUES = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    private BlockLayouts() {}

    static int u8(MemorySegment s, long off) {
        return s.get(ValueLayout.JAVA_BYTE, off) & 0xFF;
    }

    /** IQ4_XS's 6-bit scale of sub-block {@code ib} (0..7), before the −32 bias. */
    static int iq4xsScale(MemorySegment s, long blk, int ib) {
        int lo = (u8(s, blk + IQ4_XS_SCALES_L + ib / 2) >> (4 * (ib % 2))) & 0xF;
        int hi = ((s.get(I16, blk + IQ4_XS_SCALES_H) & 0xFFFF) >> (2 * ib)) & 3;
        return lo | (hi << 4);
    }

    /**
     * Q3_K's scale {@code is} (0..15) before the −32 bias: ggml unpacks the 12 bytes as uint32 words aux[0..2] with
     * kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f into four words; this computes the one word byte {@code is} lives in.
     */
    static int q3kScale(MemorySegment s, long blk, int is) {
        int which = is >> 2;
        int a = s.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q3_K_SCALES + 4L * (which & 1));
        int tmp = s.get(ValueLayout.JAVA_INT_UNALIGNED, blk + Q3_K_SCALES + 8);
        int low = (which < 2 ? a : a >>> 4) & 0x0f0f0f0f;
        int word = low | (((tmp >>> (2 * which)) & 0x03030303) << 4);
        return (word >>> (8 * (is & 3))) & 0xFF;
    }

    /** get_scale_min_k4's 6-bit scale of sub-block {@code j} (0..7) from the 12 packed bytes at {@code s[off]}. */
    static int q4kScale(MemorySegment s, long off, int j) {
        if (j < 4) {
            return s.get(ValueLayout.JAVA_BYTE, off + j) & 63;
        }
        return (s.get(ValueLayout.JAVA_BYTE, off + j + 4) & 0xF) | (((s.get(ValueLayout.JAVA_BYTE, off + j - 4) & 0xFF) >> 6) << 4);
    }

    /** get_scale_min_k4's 6-bit min of sub-block {@code j}. */
    static int q4kMin(MemorySegment s, long off, int j) {
        if (j < 4) {
            return s.get(ValueLayout.JAVA_BYTE, off + j + 4) & 63;
        }
        return ((s.get(ValueLayout.JAVA_BYTE, off + j + 4) & 0xFF) >> 4) | (((s.get(ValueLayout.JAVA_BYTE, off + j) & 0xFF) >> 6) << 4);
    }

    static float f16(MemorySegment s, long offset) {
        return Float.float16ToFloat(s.get(I16, offset));
    }
}
