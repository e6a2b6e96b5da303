package aether.device.cuda;

import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/**
 * Host-side helpers of the GPU tests: random inputs, stored weights, f16 values, float64 references. The device side
 * (context, buffers freed after each test) is {@link GpuFixture}.
 */
final class GpuTests {

    /** The bit pattern of a quiet NaN: outputs are filled with it before a launch, so an unwritten one fails. */
    static final int NAN_BITS = 0x7FC00000;

    private GpuTests() {}

    static SplittableRandom random() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return new SplittableRandom(seed);
    }

    static float[] gaussian(SplittableRandom r, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            // Box-Muller: SplittableRandom has no nextGaussian in every JDK's API shape we rely on
            double u1 = 1 - r.nextDouble(), u2 = r.nextDouble();
            v[i] = (float) (std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
        }
        return v;
    }

    /** {@code values} stored as GGUF blocks of {@code type}. */
    static MemorySegment encode(GgmlType type, float[] values) {
        MemorySegment seg = Arena.ofAuto().allocate(type.bytesFor(values.length), 16);
        BlockCodecs.require(type).quantize(values, 0, values.length, seg, 0);
        return seg;
    }

    /** What the device sees: the stored values decoded back to floats. */
    static float[] decode(GgmlType type, MemorySegment stored, int count) {
        return BlockCodecs.dequantize(type, stored, 0, count);
    }

    /** The f16 value at {@code index} of little-endian bytes (a KV cache or an f16 output downloaded). */
    static float half(byte[] b, long index) {
        int i = (int) index * 2;
        return Float.float16ToFloat((short) ((b[i] & 0xFF) | (b[i + 1] & 0xFF) << 8));
    }

    /** ||out - ref|| / ||ref||; infinite when out has a NaN or an infinity. */
    static double relativeError(float[] out, double[] ref) {
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            if (!Float.isFinite(out[i])) {
                return Double.POSITIVE_INFINITY;
            }
            double d = out[i] - ref[i];
            num += d * d;
            den += ref[i] * ref[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-300));
    }

    /** Float64 GEMV of the decoded matrix. */
    static double[] gemvReference(float[] w, int rows, int cols, float[] x, float[] add) {
        double[] y = new double[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++) {
                s += (double) w[r * cols + c] * x[c];
            }
            y[r] = s + (add == null ? 0 : add[r]);
        }
        return y;
    }

    /** Float64 softmax(q.K^T * scale).V over the first {@code len} positions, query heads at q[qOffset..]. */
    static double[] attentionReference(float[] q, int qOffset, float[][] k, float[][] v, int heads, int kvHeads,
            int dim, int len, float scale) {
        double[] ref = new double[heads * dim];
        for (int h = 0; h < heads; h++) {
            int g = h / (heads / kvHeads);
            double[] s = new double[len];
            double m = Double.NEGATIVE_INFINITY;
            for (int p = 0; p < len; p++) {
                double acc = 0;
                for (int i = 0; i < dim; i++) {
                    acc += (double) q[qOffset + h * dim + i] * scale * k[g][p * dim + i];
                }
                s[p] = acc;
                m = Math.max(m, acc);
            }
            double l = 0;
            for (int p = 0; p < len; p++) {
                s[p] = Math.exp(s[p] - m);
                l += s[p];
            }
            for (int i = 0; i < dim; i++) {
                double acc = 0;
                for (int p = 0; p < len; p++) {
                    acc += s[p] * v[g][p * dim + i];
                }
                ref[h * dim + i] = acc / l;
            }
        }
        return ref;
    }
}
