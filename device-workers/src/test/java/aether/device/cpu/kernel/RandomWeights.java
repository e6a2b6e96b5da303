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
            case Q8_0, Q4_0, Q5_0 -> new int[] {0};
            case Q4_1, Q5_1, Q4_K -> new int[] {0, 2};
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
}
