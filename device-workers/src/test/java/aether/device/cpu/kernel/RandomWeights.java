package aether.device.cpu.kernel;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/**
 * Test-side weight matrices: random but valid blocks written directly (a random f16 scale and random quants are a
 * valid block of every type), and an independent float64 dequantizer written from ggml-common.h's layouts — it
 * shares no code with the kernels. Segments start at an odd address to prove the kernels assume no alignment.
 */
final class RandomWeights {
    /** kvalues_iq4nl, copied from ggml-common.h. */
    private static final int[] IQ4 = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    private RandomWeights() {}

    /** {@code rows × cols} weights of {@code type}, at byte offset 3 of a fresh segment (deliberately misaligned). */
    static MemorySegment create(Arena arena, GgmlType type, int rows, int cols, Random rnd) {
        long bytes = type.bytesFor(cols) * rows;
        MemorySegment seg = arena.allocate(bytes + 3, 16).asSlice(3, bytes);
        switch (type) {
            case F32 -> {
                for (long i = 0; i < (long) rows * cols; i++) {
                    seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, 4 * i, rnd.nextFloat() * 2 - 1);
                }
            }
            case F16 -> {
                for (long i = 0; i < (long) rows * cols; i++) {
                    seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2 * i, Float.floatToFloat16(rnd.nextFloat() * 2 - 1));
                }
            }
            case BF16 -> {
                for (long i = 0; i < (long) rows * cols; i++) {
                    seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2 * i,
                            (short) (Float.floatToRawIntBits(rnd.nextFloat() * 2 - 1) >>> 16));
                }
            }
            default -> {
                // quantized: every byte random, then a sane f16 scale (random bits could be Inf/NaN)
                for (long i = 0; i < bytes; i++) {
                    seg.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt(256));
                }
                long blocks = bytes / type.blockBytes();
                for (long b = 0; b < blocks; b++) {
                    for (int off : halfOffsets(type)) {
                        float d = (rnd.nextFloat() * 0.099f + 0.001f) * (rnd.nextBoolean() ? 1 : -1);
                        seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, b * type.blockBytes() + off, Float.floatToFloat16(d));
                    }
                }
            }
        }
        return seg;
    }

    /** Where each block keeps its f16 scales/mins (ggml-common.h). */
    static int[] halfOffsets(GgmlType type) {
        return switch (type) {
            case Q8_0, Q4_0, Q5_0, IQ4_NL, IQ4_XS -> new int[] {0};
            case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
            case Q2_K -> new int[] {80, 82};
            case Q3_K -> new int[] {108};
            case Q6_K -> new int[] {208};
            default -> throw new IllegalArgumentException("no test generator for " + type);
        };
    }

    /** Row {@code r} dequantized in float64 from the block layout. */
    static double[] row(GgmlType type, MemorySegment w, int r, int cols) {
        double[] out = new double[cols];
        long base = r * type.bytesFor(cols);
        switch (type) {
            case F32 -> {
                for (int i = 0; i < cols; i++) {
                    out[i] = w.get(ValueLayout.JAVA_FLOAT_UNALIGNED, base + 4L * i);
                }
            }
            case F16 -> {
                for (int i = 0; i < cols; i++) {
                    out[i] = Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2L * i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < cols; i++) {
                    out[i] = Float.intBitsToFloat((w.get(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2L * i) & 0xFFFF) << 16);
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < cols / 32; b++) {
                    long blk = base + 34L * b;
                    double d = Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, blk));
                    for (int j = 0; j < 32; j++) {
                        out[b * 32 + j] = d * w.get(ValueLayout.JAVA_BYTE, blk + 2 + j);
                    }
                }
            }
            case Q4_0 -> {
                for (int b = 0; b < cols / 32; b++) {
                    long blk = base + 18L * b;
                    double d = Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, blk));
                    for (int j = 0; j < 16; j++) {
                        int q = w.get(ValueLayout.JAVA_BYTE, blk + 2 + j) & 0xFF;
                        out[b * 32 + j] = d * ((q & 0x0F) - 8);
                        out[b * 32 + j + 16] = d * ((q >> 4) - 8);
                    }
                }
            }
            case Q4_1 -> {
                for (int b = 0; b < cols / 32; b++) {
                    long blk = base + 20L * b;
                    double d = half(w, blk);
                    double m = half(w, blk + 2);
                    for (int j = 0; j < 16; j++) {
                        int q = w.get(ValueLayout.JAVA_BYTE, blk + 4 + j) & 0xFF;
                        out[b * 32 + j] = d * (q & 0x0F) + m;
                        out[b * 32 + j + 16] = d * (q >> 4) + m;
                    }
                }
            }
            case Q5_0, Q5_1 -> {
                boolean q51 = type == GgmlType.Q5_1;
                int bytes = q51 ? 24 : 22;
                for (int b = 0; b < cols / 32; b++) {
                    long blk = base + (long) bytes * b;
                    double d = half(w, blk);
                    double m = q51 ? half(w, blk + 2) : 0;
                    long qhBits = 0;
                    for (int k = 0; k < 4; k++) {   // uint32 little-endian, read byte by byte
                        qhBits |= (long) (w.get(ValueLayout.JAVA_BYTE, blk + (q51 ? 4 : 2) + k) & 0xFF) << (8 * k);
                    }
                    for (int j = 0; j < 16; j++) {
                        int q = w.get(ValueLayout.JAVA_BYTE, blk + (q51 ? 8 : 6) + j) & 0xFF;
                        int lo = (q & 0x0F) | (int) (((qhBits >> j) & 1) << 4);
                        int hi = (q >> 4) | (int) (((qhBits >> (j + 16)) & 1) << 4);
                        out[b * 32 + j] = q51 ? d * lo + m : d * (lo - 16);
                        out[b * 32 + j + 16] = q51 ? d * hi + m : d * (hi - 16);
                    }
                }
            }
            case Q4_K -> {
                for (int b = 0; b < cols / 256; b++) {
                    long blk = base + 144L * b;
                    double d = half(w, blk);
                    double dmin = half(w, blk + 2);
                    int[] sc = new int[12];
                    for (int k = 0; k < 12; k++) {
                        sc[k] = w.get(ValueLayout.JAVA_BYTE, blk + 4 + k) & 0xFF;
                    }
                    for (int sub = 0; sub < 8; sub++) {
                        int scale = sub < 4 ? sc[sub] & 63 : (sc[sub + 4] & 0xF) | ((sc[sub - 4] >> 6) << 4);
                        int min = sub < 4 ? sc[sub + 4] & 63 : (sc[sub + 4] >> 4) | ((sc[sub] >> 6) << 4);
                        for (int l = 0; l < 32; l++) {
                            int q = w.get(ValueLayout.JAVA_BYTE, blk + 16 + 32L * (sub / 2) + l) & 0xFF;
                            int nib = sub % 2 == 0 ? q & 0xF : q >> 4;
                            out[b * 256 + sub * 32 + l] = d * scale * nib - dmin * min;
                        }
                    }
                }
            }
            case Q6_K -> {
                for (int b = 0; b < cols / 256; b++) {
                    long blk = base + 210L * b;
                    double d = half(w, blk + 208);
                    for (int e = 0; e < 256; e++) {
                        int h = e / 128;
                        int inHalf = e % 128;
                        int quarter = inHalf / 32;
                        int l = inHalf % 32;
                        int ql = w.get(ValueLayout.JAVA_BYTE, blk + 64L * h + l + (quarter % 2) * 32) & 0xFF;
                        int nib = quarter < 2 ? ql & 0xF : ql >> 4;
                        int qh = w.get(ValueLayout.JAVA_BYTE, blk + 128 + 32L * h + l) & 0xFF;
                        int q = (nib | (((qh >> (2 * quarter)) & 3) << 4)) - 32;
                        int scale = w.get(ValueLayout.JAVA_BYTE, blk + 192 + 8L * h + l / 16 + 2 * quarter);
                        out[b * 256 + e] = d * scale * q;
                    }
                }
            }
            case Q5_K -> {
                // ggml dequantize_row_q5_K, walked with its own pointers (y++, ql += 32, u1 <<= 2)
                int y = 0;
                for (int b = 0; b < cols / 256; b++) {
                    long blk = base + 176L * b;
                    double d = half(w, blk);
                    double dmin = half(w, blk + 2);
                    int[] sc = new int[12];
                    for (int k = 0; k < 12; k++) {
                        sc[k] = w.get(ValueLayout.JAVA_BYTE, blk + 4 + k) & 0xFF;
                    }
                    long ql = blk + 48;
                    int u1 = 1;
                    int u2 = 2;
                    for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
                        int sc1 = is < 4 ? sc[is] & 63 : (sc[is + 4] & 0xF) | ((sc[is - 4] >> 6) << 4);
                        int m1 = is < 4 ? sc[is + 4] & 63 : (sc[is + 4] >> 4) | ((sc[is] >> 6) << 4);
                        int is1 = is + 1;
                        int sc2 = is1 < 4 ? sc[is1] & 63 : (sc[is1 + 4] & 0xF) | ((sc[is1 - 4] >> 6) << 4);
                        int m2 = is1 < 4 ? sc[is1 + 4] & 63 : (sc[is1 + 4] >> 4) | ((sc[is1] >> 6) << 4);
                        for (int l = 0; l < 32; l++) {
                            int q = w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF;
                            int h = w.get(ValueLayout.JAVA_BYTE, blk + 16 + l) & 0xFF;
                            out[y++] = d * sc1 * ((q & 0xF) + ((h & u1) != 0 ? 16 : 0)) - dmin * m1;
                        }
                        for (int l = 0; l < 32; l++) {
                            int q = w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF;
                            int h = w.get(ValueLayout.JAVA_BYTE, blk + 16 + l) & 0xFF;
                            out[y++] = d * sc2 * ((q >> 4) + ((h & u2) != 0 ? 16 : 0)) - dmin * m2;
                        }
                        ql += 32;
                        u1 <<= 2;
                        u2 <<= 2;
                    }
                }
            }
            case Q2_K -> {
                int y = 0;
                for (int b = 0; b < cols / 256; b++) {
                    long blk = base + 84L * b;
                    double d = half(w, blk + 80);
                    double dmin = half(w, blk + 82);
                    long q = blk + 16;
                    int is = 0;
                    for (int n = 0; n < 256; n += 128) {
                        for (int shift = 0; shift < 8; shift += 2) {
                            for (int part = 0; part < 2; part++) {
                                int sc = w.get(ValueLayout.JAVA_BYTE, blk + is++) & 0xFF;
                                for (int l = 0; l < 16; l++) {
                                    int v = ((w.get(ValueLayout.JAVA_BYTE, q + l + 16 * part) & 0xFF) >> shift) & 3;
                                    out[y++] = d * (sc & 0xF) * v - dmin * (sc >> 4);
                                }
                            }
                        }
                        q += 32;
                    }
                }
            }
            case Q3_K -> {
                int y = 0;
                for (int b = 0; b < cols / 256; b++) {
                    long blk = base + 110L * b;
                    double d = half(w, blk + 108);
                    // ggml: memcpy(aux, scales, 12) then the kmask shuffle; scales are the 16 bytes of aux[0..3]
                    long[] aux = new long[4];
                    for (int k = 0; k < 3; k++) {
                        for (int byteIndex = 0; byteIndex < 4; byteIndex++) {
                            aux[k] |= (long) (w.get(ValueLayout.JAVA_BYTE, blk + 96 + 4 * k + byteIndex) & 0xFF) << (8 * byteIndex);
                        }
                    }
                    long tmp = aux[2];
                    aux[2] = ((aux[0] >> 4) & 0x0f0f0f0fL) | (((tmp >> 4) & 0x03030303L) << 4);
                    aux[3] = ((aux[1] >> 4) & 0x0f0f0f0fL) | (((tmp >> 6) & 0x03030303L) << 4);
                    aux[0] = (aux[0] & 0x0f0f0f0fL) | ((tmp & 0x03030303L) << 4);
                    aux[1] = (aux[1] & 0x0f0f0f0fL) | (((tmp >> 2) & 0x03030303L) << 4);
                    long q = blk + 32;
                    int m = 1;
                    int is = 0;
                    for (int n = 0; n < 256; n += 128) {
                        for (int shift = 0; shift < 8; shift += 2) {
                            for (int part = 0; part < 2; part++) {
                                int scale = (int) ((aux[is / 4] >> (8 * (is % 4))) & 0xFF) - 32;
                                is++;
                                for (int l = 0; l < 16; l++) {
                                    int v = ((w.get(ValueLayout.JAVA_BYTE, q + l + 16 * part) & 0xFF) >> shift) & 3;
                                    boolean hi = (w.get(ValueLayout.JAVA_BYTE, blk + l + 16 * part) & m) != 0;
                                    out[y++] = d * scale * (v - (hi ? 0 : 4));
                                }
                            }
                            m <<= 1;
                        }
                        q += 32;
                    }
                }
            }
            case IQ4_NL -> {
                for (int b = 0; b < cols / 32; b++) {
                    long blk = base + 18L * b;
                    double d = half(w, blk);
                    for (int j = 0; j < 16; j++) {
                        int q = w.get(ValueLayout.JAVA_BYTE, blk + 2 + j) & 0xFF;
                        out[b * 32 + j] = d * IQ4[q & 0xF];
                        out[b * 32 + j + 16] = d * IQ4[q >> 4];
                    }
                }
            }
            case IQ4_XS -> {
                for (int b = 0; b < cols / 256; b++) {
                    long blk = base + 136L * b;
                    double d = half(w, blk);
                    int scalesH = (w.get(ValueLayout.JAVA_BYTE, blk + 2) & 0xFF) | (w.get(ValueLayout.JAVA_BYTE, blk + 3) & 0xFF) << 8;
                    for (int ib = 0; ib < 8; ib++) {
                        int ls = ((w.get(ValueLayout.JAVA_BYTE, blk + 4 + ib / 2) & 0xFF) >> (4 * (ib % 2))) & 0xF
                                | ((scalesH >> (2 * ib)) & 3) << 4;
                        double dl = d * (ls - 32);
                        for (int j = 0; j < 16; j++) {
                            int q = w.get(ValueLayout.JAVA_BYTE, blk + 8 + 16L * ib + j) & 0xFF;
                            out[b * 256 + ib * 32 + j] = dl * IQ4[q & 0xF];
                            out[b * 256 + ib * 32 + j + 16] = dl * IQ4[q >> 4];
                        }
                    }
                }
            }
            default -> throw new IllegalArgumentException("no test dequantizer for " + type);
        }
        return out;
    }

    private static double half(MemorySegment w, long off) {
        return Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, off));
    }

    /**
     * ggml's quantize_row_q8_0_ref in float64 terms: per block of 32, d = amax/127 (f32), q = roundf(x/d) computed as
     * x·(1/d) in f32, and the value the dot sees is fp16(d)·q. Returns the values the int8 path multiplies.
     */
    static double[] q8Values(float[] x) {
        double[] out = new double[x.length];
        for (int b = 0; b < x.length / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[b * 32 + j]));
            }
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            double dh = Float.float16ToFloat(Float.floatToFloat16(d));
            for (int j = 0; j < 32; j++) {
                float v = x[b * 32 + j] * id;
                long q = (long) Math.floor(Math.abs((double) v) + 0.5) * (v < 0 ? -1 : 1);
                out[b * 32 + j] = dh * q;
            }
        }
        return out;
    }
    /**
     * Per element, a bound on the magnitudes of the terms a kernel may add separately to make the weight: for
     * Q4_K/Q5_K (w = d·sc·q − dmin·m) |w| + 2·|dmin·m| ≥ |d·sc·q| + |dmin·m|; for Q4_0 (w = d·(q − 8))
     * |w| + 16·|d| ≥ |d·q| + |8·d|; for the other types |w|.
     */
    static double[] magnitudes(GgmlType type, MemorySegment w, int r, double[] values) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = Math.abs(values[i]);
        }
        long base = (long) r * type.bytesFor(values.length);
        if (type == GgmlType.Q4_0) {   // w = d·(nib − 8): the planar kernel adds d·nib and −8·d separately
            for (int b = 0; b < values.length / 32; b++) {
                double d = Math.abs(half(w, base + 18L * b));
                for (int j = 0; j < 32; j++) {
                    out[b * 32 + j] += 16 * d;
                }
            }
            return out;
        }
        if (type != GgmlType.Q4_K && type != GgmlType.Q5_K) {
            return out;
        }
        for (int b = 0; b < values.length / 256; b++) {
            long blk = base + (long) type.blockBytes() * b;
            double dmin = half(w, blk + 2);
            for (int s = 0; s < 8; s++) {
                int lo = w.get(ValueLayout.JAVA_BYTE, blk + 4 + s % 4) & 0xFF;
                int mid = w.get(ValueLayout.JAVA_BYTE, blk + 8 + s % 4) & 0xFF;
                int hi = w.get(ValueLayout.JAVA_BYTE, blk + 12 + s % 4) & 0xFF;
                int min = s < 4 ? mid & 63 : (hi >> 4) | ((mid >> 6) << 4);
                for (int l = 0; l < 32; l++) {
                    out[b * 256 + 32 * s + l] += 2 * Math.abs(dmin * min);
                }
            }
        }
        return out;
    }

    /**
     * ggml's quantize_row_q8_K_ref: per block of 256, max = the element of largest magnitude (first one), iscale =
     * −127/max in f32, q = min(127, rint(iscale·x)) (f32 product), value = (1/iscale)·q. Returns the values the Q8_K
     * int path multiplies.
     */
    static double[] q8KValues(float[] x) {
        double[] out = new double[x.length];
        for (int b = 0; b < x.length / 256; b++) {
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++) {
                if (Math.abs(x[b * 256 + j]) > amax) {
                    amax = Math.abs(x[b * 256 + j]);
                    max = x[b * 256 + j];
                }
            }
            if (amax == 0) {
                continue;
            }
            float iscale = -127f / max;
            double d = 1f / iscale;
            for (int j = 0; j < 256; j++) {
                out[b * 256 + j] = d * Math.min(127, Math.rint(iscale * x[b * 256 + j]));
            }
        }
        return out;
    }
}
