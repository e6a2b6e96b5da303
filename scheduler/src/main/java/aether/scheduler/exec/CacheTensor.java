package aether.scheduler.exec;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;
import aether.runtime.tensor.GgmlType;
import java.util.Objects;

/**
 * A KV cache [slots, width] as the reference executor keeps it: the values its f32, f16 or q8_0 storage holds, as
 * doubles, updated in place by {@code kv_store} (each stored row rounded to the cache type exactly as a device cache
 * stores it). Mutable and owned by the caller that binds it; not thread-safe.
 */
public final class CacheTensor implements TensorValue {

    private final TensorType type;
    private final double[] values;

    /** A zero cache of {@code slots} rows of {@code width} values stored as {@code dtype} (f32, f16 or q8_0). */
    public CacheTensor(DType dtype, int slots, int width) {
        Objects.requireNonNull(dtype, "dtype");
        if (!(dtype.equals(DType.F32) || dtype.equals(DType.F16) || dtype.ggml() == GgmlType.Q8_0)) {
            throw new IllegalArgumentException("KV cache type " + dtype + " (expected f32, f16 or q8_0)");
        }
        if (slots < 1 || width < 1 || (dtype.ggml() == GgmlType.Q8_0 && width % 32 != 0)) {
            throw new IllegalArgumentException("KV cache [" + slots + ", " + width + "] of " + dtype
                    + " (expected slots >= 1, width >= 1, a multiple of 32 for q8_0)");
        }
        this.type = new TensorType(Shape.of(slots, width), dtype);
        this.values = new double[Math.multiplyExact(slots, width)];
    }

    @Override
    public TensorType type() {
        return type;
    }

    /** The live values (row-major), written by the executor. */
    double[] values() {
        return values;
    }

    /** Value {@code col} of cache row {@code slot}. */
    public double get(int slot, int col) {
        return values[Math.multiplyExact(slot, type.shape().dim(1)) + col];
    }

    /**
     * Writes {@code src[srcOff, srcOff + width)} into row {@code slot} of {@code cache} rounded to {@code dtype}: f32
     * and f16 round each value; q8_0 follows ggml's quantize_row_q8_0 per block of 32 (d = amax / 127 rounded to f16,
     * q = x times the f32 reciprocal of d rounded to nearest even, value q * d).
     */
    static void store(double[] cache, int width, int slot, double[] src, int srcOff, DType dtype) {
        int base = Math.multiplyExact(slot, width);
        if (dtype.equals(DType.F32)) {
            for (int c = 0; c < width; c++) {
                cache[base + c] = (float) src[srcOff + c];
            }
        } else if (dtype.equals(DType.F16)) {
            for (int c = 0; c < width; c++) {
                cache[base + c] = Float.float16ToFloat(Float.floatToFloat16((float) src[srcOff + c]));
            }
        } else {
            float[] block = new float[32];
            for (int b = 0; b < width; b += 32) {
                for (int i = 0; i < 32; i++) {
                    block[i] = (float) src[srcOff + b + i];
                }
                quantizeQ8_0(block, cache, base + b);
            }
        }
    }

    /** One q8_0 block of {@code x}, dequantized into {@code out[at, at + 32)} (ggml quantize_row_q8_0). */
    static void quantizeQ8_0(float[] x, double[] out, int at) {
        float amax = 0;
        for (float v : x) {
            amax = Math.max(amax, Math.abs(v));
        }
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        float dh = Float.float16ToFloat(Float.floatToFloat16(d));
        for (int i = 0; i < 32; i++) {
            out[at + i] = Math.rint(x[i] * id) * (double) dh;   // ties to even, as ggml's AVX2 quantizer
        }
    }
}
