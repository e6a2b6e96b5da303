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
                    float d = (rnd.nextFloat() * 0.099f + 0.001f) * (rnd.nextBoolean() ? 1 : -1);
                    seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, b * type.blockBytes(), Float.floatToFloat16(d));
                }
            }
        }
        return seg;
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
            default -> throw new IllegalArgumentException("no test dequantizer for " + type);
        }
        return out;
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
