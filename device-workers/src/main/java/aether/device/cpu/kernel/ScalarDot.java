package aether.device.cpu.kernel;

import static aether.device.cpu.kernel.BlockLayouts.F32;
import static aether.device.cpu.kernel.BlockLayouts.I16;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Scalar references of every dot kernel: one weight row (at {@code w[wOff]}, {@code cols} elements in its block
 * format) times one activation row. They are the {@code -Daether.vector=false} path and what the vector kernels are
 * tested against; they favour obviously-right over fast. Float-activation variants take f32 {@code x}; the
 * {@code q8} variants take a row in {@link Q8Activations}' layout and sum int8×int quants per block exactly, in int,
 * as ggml's {@code ggml_vec_dot_*_q8_0_generic} do.
 */
final class ScalarDot {
    private ScalarDot() {}

    static float f32(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int i = 0; i < cols; i++) {
            sum += w.get(F32, wOff + 4L * i) * x.get(F32, xOff + 4L * i);
        }
        return sum;
    }

    static float f16(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int i = 0; i < cols; i++) {
            sum += Float.float16ToFloat(w.get(I16, wOff + 2L * i)) * x.get(F32, xOff + 4L * i);
        }
        return sum;
    }

    static float bf16(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int i = 0; i < cols; i++) {
            sum += Float.intBitsToFloat(w.get(I16, wOff + 2L * i) << 16) * x.get(F32, xOff + 4L * i);
        }
        return sum;
    }

    static float q8_0(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q8_0_BYTES;
            long xb = xOff + (long) b * 32 * Float.BYTES;
            float s = 0f;
            for (int j = 0; j < 32; j++) {
                s += w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q8_0_QS + j) * x.get(F32, xb + 4L * j);
            }
            sum += BlockLayouts.f16(w, blk) * s;
        }
        return sum;
    }

    static float q4_0(MemorySegment w, long wOff, MemorySegment x, long xOff, int cols) {
        float sum = 0f;
        for (int b = 0; b < cols / 32; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q4_0_BYTES;
            long xb = xOff + (long) b * 32 * Float.BYTES;
            float s = 0f;
            for (int j = 0; j < 16; j++) {
                int q = w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q4_0_QS + j) & 0xFF;
                s += ((q & 0xF) - 8) * x.get(F32, xb + 4L * j) + ((q >>> 4) - 8) * x.get(F32, xb + 4L * (j + 16));
            }
            sum += BlockLayouts.f16(w, blk) * s;
        }
        return sum;
    }

    static float q8_0Q8(MemorySegment w, long wOff, MemorySegment xq, long xqOff, int cols) {
        int blocks = cols / 32;
        long qs = xqOff + Q8Activations.quantsOffset(cols);
        float sum = 0f;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q8_0_BYTES;
            int isum = 0;
            for (int j = 0; j < 32; j++) {
                isum += w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q8_0_QS + j)
                        * xq.get(ValueLayout.JAVA_BYTE, qs + b * 32L + j);
            }
            sum += isum * (BlockLayouts.f16(w, blk) * xq.get(F32, xqOff + 4L * b));
        }
        return sum;
    }

    static float q4_0Q8(MemorySegment w, long wOff, MemorySegment xq, long xqOff, int cols) {
        int blocks = cols / 32;
        long qs = xqOff + Q8Activations.quantsOffset(cols);
        float sum = 0f;
        for (int b = 0; b < blocks; b++) {
            long blk = wOff + (long) b * BlockLayouts.Q4_0_BYTES;
            int isum = 0;
            for (int j = 0; j < 16; j++) {
                int q = w.get(ValueLayout.JAVA_BYTE, blk + BlockLayouts.Q4_0_QS + j) & 0xFF;
                isum += ((q & 0xF) - 8) * xq.get(ValueLayout.JAVA_BYTE, qs + b * 32L + j)
                        + ((q >>> 4) - 8) * xq.get(ValueLayout.JAVA_BYTE, qs + b * 32L + j + 16);
            }
            sum += isum * (BlockLayouts.f16(w, blk) * xq.get(F32, xqOff + 4L * b));
        }
        return sum;
    }
}
