package aether.device.cuda;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;

/** Helpers of the GPU tests: skipping without a device, random inputs, poisoned outputs, float64 references. */
final class GpuTests {

    /** The bit pattern of a quiet NaN: outputs are filled with it before a launch, so an unwritten one fails. */
    static final int NAN_BITS = 0x7FC00000;

    private GpuTests() {}

    /** Skips the calling test (with the reason) when this host has no usable CUDA device. */
    static void assumeGpu() {
        CudaDriver.Availability a = CudaDriver.availability();
        assumeTrue(a.available(), () -> "GPU test skipped: CUDA " + a.describe());
    }

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

    static CUdeviceptr upload(CudaContext cuda, float[] v) {
        CUdeviceptr p = cuda.alloc((long) v.length * 4);
        cuda.upload(v, p);
        return p;
    }

    static CUdeviceptr poisoned(CudaContext cuda, int floats) {
        CUdeviceptr p = cuda.alloc((long) floats * 4);
        cuda.fill32(p, NAN_BITS, floats);
        return p;
    }

    static float[] download(CudaContext cuda, CUdeviceptr p, int n) {
        float[] out = new float[n];
        cuda.download(p, out);
        return out;
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
}
