package aether.device.cuda;

import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;

/**
 * GPU micro-benchmark: device-to-device copy bandwidth (bytes read + written, {@code cuMemcpyDtoDAsync}) and the
 * decode GEMV kernels at 1B/8B-model shapes per weight type, as GB/s of weight bytes and as a fraction of the measured
 * copy bandwidth. Timed with CUDA events around a captured graph of launches that rotate through enough weight copies
 * to exceed the L2 cache twice over; warmed up; median of many.
 *
 * <p>{@code java -cp ... aether.device.cuda.CudaBench [--types Q4_0,Q8_0,F16] [--reps 30]}; prints a table.
 */
public final class CudaBench {

    /** [rows (outputs), cols (inputs)]: the projections of Llama 8B (dim 4096, ffn 14336) and 1B (2048, 8192), and a 32k-vocab output head. */
    static final int[][] SHAPES = {
        {14336, 4096}, {4096, 14336}, {4096, 4096}, {1024, 4096},
        {8192, 2048}, {2048, 8192}, {2048, 2048}, {32000, 2048},
    };

    public record GemvResult(GgmlType type, int rows, int cols, double micros, double gbs, double fraction) {}

    private CudaBench() {}

    public static void main(String[] args) {
        List<GgmlType> types = List.of(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.F16,
                GgmlType.BF16);
        int reps = 30;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--types" -> types = Arrays.stream(args[++i].split(",")).map(GgmlType::valueOf).toList();
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + " (expected --types T,T.. --reps N)");
            }
        }
        CudaDriver.Availability a = CudaDriver.availability();
        if (!a.available()) {
            System.out.println("CUDA " + a.describe());
            System.exit(2);
        }
        try (CudaContext cuda = CudaContext.open(0)) {
            System.out.printf("device: %s, compute capability %d, %d SMs, L2 %d MiB, %d MiB%n", cuda.name(),
                    cuda.computeCapability(), cuda.multiprocessors(), cuda.l2Bytes() >> 20, cuda.totalMemory() >> 20);
            double copy = copyBandwidth(cuda, 1L << 30, reps);
            System.out.printf(Locale.ROOT, "device-to-device copy (1 GiB, read + write): %.1f GB/s%n", copy);
            List<GemvResult> results = new ArrayList<>();
            for (GgmlType t : types) {
                for (int[] s : SHAPES) {
                    GemvResult r = gemv(cuda, t, s[0], s[1], reps, copy);
                    results.add(r);
                    System.out.printf(Locale.ROOT, "gemv %-5s [1,%d]x[%d,%d]: %.2f us, %.1f GB/s, %.2f of copy%n",
                            t, s[1], s[1], s[0], r.micros(), r.gbs(), r.fraction());
                }
            }
            System.out.println();
            System.out.printf(Locale.ROOT, "| %-5s | %-18s | %9s | %8s | %7s |%n", "type", "x[1,K] . W[K,M]", "us", "GB/s",
                    "of copy");
            System.out.printf("|-------|--------------------|-----------|----------|---------|%n");
            for (GemvResult r : results) {
                System.out.printf(Locale.ROOT, "| %-5s | %-18s | %9.2f | %8.1f | %7.2f |%n", r.type(),
                        "K=" + r.cols() + " M=" + r.rows(), r.micros(), r.gbs(), r.fraction());
            }
            System.out.println();
            System.out.printf(Locale.ROOT, "| %-5s | %-28s | %9s | %8s | %-26s |%n", "type",
                    "prefill GEMM X[N,K] . W[K,M]", "us", "TFLOP/s", "us at tile 32 / 64 / 128");
            System.out.printf("|-------|------------------------------|-----------|----------|----------------------------|%n");
            for (GgmlType t : types) {
                if (!CudaPrefill.supports(t)) {
                    continue;
                }
                double layer = 0;
                for (int[] s : GEMM_SHAPES) {
                    double[] us = gemm(cuda, t, s[0], s[1], GEMM_TOKENS, reps);
                    layer += us[0];
                    System.out.printf(Locale.ROOT, "| %-5s | %-28s | %9.1f | %8.1f | %6.1f / %6.1f / %6.1f |%n", t,
                            "N=" + GEMM_TOKENS + " K=" + s[1] + " M=" + s[0], us[0],
                            2.0 * s[0] * s[1] * GEMM_TOKENS / (us[0] * 1e-6) / 1e12, us[1], us[2], us[3]);
                }
                System.out.printf(Locale.ROOT, "gemm %-5s one 8B layer (qkv, o, gate|up, down) at N=%d: %.0f us -> "
                        + "%.0f t/s for 32 layers from the GEMMs alone%n", t, GEMM_TOKENS, layer,
                        GEMM_TOKENS / (32 * layer * 1e-6));
            }
            System.out.printf(Locale.ROOT, "copy bandwidth (DtoD, read+write): %.1f GB/s%n", copy);
        }
    }

    /** Prompt tokens of the GEMM benchmark (the pp512 of llama-bench). */
    static final int GEMM_TOKENS = 512;

    /** [rows, cols] of the GEMMs of one Llama 8B layer as the engine stacks them: q|k|v, o, gate|up, down. */
    static final int[][] GEMM_SHAPES = {{6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336}};

    /**
     * Median µs of the prefill GEMM of {@code n} tokens with a rows x cols matrix of {@code type}: with the tile the
     * launcher picks, then with each tile forced (32, 64, 128 tokens per block).
     */
    static double[] gemm(CudaContext cuda, GgmlType type, int rows, int cols, int n, int reps) {
        CudaKernels k = new CudaKernels(cuda);
        CudaPrefill p = new CudaPrefill(k);
        SplittableRandom r = new SplittableRandom(rows * 17L + cols);
        MemorySegment raw = randomMatrix(type, rows, cols, r);
        GpuMatrix m = GpuMatrix.upload(cuda, type, rows, cols, raw, null);
        float[] x = new float[n * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextDouble() * 2 - 1);
        }
        CUdeviceptr dx = cuda.alloc(x.length * 4L), x16 = cuda.alloc(x.length * 2L), y = cuda.alloc((long) n * rows * 4);
        try (CudaContext.Timer timer = cuda.timer()) {
            cuda.upload(x, dx);
            p.toHalf(dx, x16, cols, n);
            p.gemm(m, x16, null, y, n);
            cuda.checkErrors("gemm " + type + " " + rows + "x" + cols);
            double[] result = new double[4];
            for (int tile = 0; tile < 4; tile++) {
                int bn = tile == 0 ? CudaPrefill.tileTokens(n, rows, cuda.multiprocessors()) : 16 << tile;
                p.gemm(m, x16, null, y, n, rows, bn);
                double[] us = new double[Math.max(5, reps / 3)];
                for (int i = 0; i < us.length; i++) {
                    timer.start();
                    p.gemm(m, x16, null, y, n, rows, bn);
                    timer.stop();
                    us[i] = timer.elapsedMillis() * 1e3;
                }
                result[tile] = median(us);
            }
            return result;
        } finally {
            m.free(cuda);
            cuda.free(dx, x.length * 4L);
            cuda.free(x16, x.length * 2L);
            cuda.free(y, (long) n * rows * 4);
        }
    }

    /** GB/s of a device-to-device copy of {@code bytes}, counting bytes read plus bytes written; median. */
    public static double copyBandwidth(CudaContext cuda, long bytes, int reps) {
        CUdeviceptr a = cuda.alloc(bytes), b = cuda.alloc(bytes);
        try (CudaContext.Timer timer = cuda.timer()) {
            cuda.fill32(a, 0x3F800000, bytes / 4);
            for (int i = 0; i < 3; i++) {
                cuda.copyAsync(a, b, bytes);
            }
            double[] gbs = new double[Math.max(5, reps / 3)];
            for (int i = 0; i < gbs.length; i++) {
                timer.start();
                cuda.copyAsync(a, b, bytes);
                timer.stop();
                gbs[i] = 2.0 * bytes / (timer.elapsedMillis() * 1e-3) / 1e9;
            }
            return median(gbs);
        } finally {
            cuda.free(a, bytes);
            cuda.free(b, bytes);
        }
    }

    static GemvResult gemv(CudaContext cuda, GgmlType type, int rows, int cols, int reps, double copyGbs) {
        CudaKernels k = new CudaKernels(cuda);
        SplittableRandom r = new SplittableRandom(rows * 31L + cols);
        // one real matrix (quantized from random floats), copied on the device until the set exceeds 2 x L2
        MemorySegment raw = randomMatrix(type, rows, cols, r);
        GpuMatrix first = GpuMatrix.upload(cuda, type, rows, cols, raw, null);
        int copies = (int) Math.max(2, Math.min(64, (2L * cuda.l2Bytes()) / first.bytes() + 1));
        List<GpuMatrix> set = new ArrayList<>();
        set.add(first);
        for (int c = 1; c < copies; c++) {
            set.add(copyOf(cuda, first));
        }
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = (float) (r.nextDouble() * 2 - 1);
        }
        CUdeviceptr dx = cuda.alloc(cols * 4L), y = cuda.alloc(rows * 4L);
        cuda.upload(x, dx);
        QuantizedVector xq = QuantizedVector.allocate(cuda, cols);
        k.quantize(dx, xq);
        k.gemv(first, dx, xq, null, y);  // eager once: a launch error shows here, not as a broken graph
        cuda.checkErrors("gemv " + type + " " + rows + "x" + cols);
        try (CudaContext.Graph graph = cuda.capture(() -> {
                    for (GpuMatrix m : set) {
                        k.gemv(m, dx, xq, null, y);
                    }
                });
                CudaContext.Timer timer = cuda.timer()) {
            for (int i = 0; i < 3; i++) {
                graph.launch();
            }
            cuda.checkErrors("gemv warm-up");
            double[] us = new double[reps];
            for (int i = 0; i < reps; i++) {
                timer.start();
                graph.launch();
                timer.stop();
                us[i] = timer.elapsedMillis() * 1e3 / set.size();
            }
            double med = median(us);
            double gbs = first.bytes() / (med * 1e-6) / 1e9;
            return new GemvResult(type, rows, cols, med, gbs, gbs / copyGbs);
        } finally {
            for (GpuMatrix m : set) {
                m.free(cuda);
            }
            cuda.free(dx, cols * 4L);
            cuda.free(y, rows * 4L);
            xq.free(cuda);
        }
    }

    /**
     * A rows x cols matrix of {@code type} in GGUF storage: 64 rows quantized from random floats, repeated (the
     * K-quant reference quantizers are too slow for whole 8B matrices within the GPU check's time; the kernels'
     * speed does not depend on the values).
     */
    static MemorySegment randomMatrix(GgmlType type, int rows, int cols, SplittableRandom r) {
        int base = Math.min(rows, 64);
        float[] w = new float[base * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextDouble() - 0.5) * 0.05f;
        }
        MemorySegment block = Arena.ofAuto().allocate(type.bytesFor(w.length), 16);
        BlockCodecs.require(type).quantize(w, 0, w.length, block, 0);
        MemorySegment raw = Arena.ofAuto().allocate(type.bytesFor((long) rows * cols), 16);
        long rowBytes = type.bytesFor(cols);
        for (int row = 0; row < rows; row += base) {
            int n = Math.min(base, rows - row);
            MemorySegment.copy(block, 0, raw, row * rowBytes, n * rowBytes);
        }
        return raw;
    }

    static GpuMatrix copyOf(CudaContext cuda, GpuMatrix m) {
        if (GpuMatrix.isKQuant(m.type())) {  // one allocation: quants, then the rest
            CUdeviceptr p = cuda.alloc(m.bytes());
            cuda.copyAsync(m.quants(), p, m.bytes());
            return new GpuMatrix(m.type(), m.rows(), m.cols(), p, p.withByteOffset(GpuMatrix.kQuantLoBytes(m.rows(),
                    m.cols())), m.bytes());
        }
        if (m.scales() == null) {
            CUdeviceptr p = cuda.alloc(m.bytes());
            cuda.copyAsync(m.quants(), p, m.bytes());
            return new GpuMatrix(m.type(), m.rows(), m.cols(), p, null, m.bytes());
        }
        long blocks = (long) m.rows() * (m.cols() / 32);
        long qb = blocks * (m.type() == GgmlType.Q4_0 ? 16 : 32);
        CUdeviceptr q = cuda.alloc(qb), d = cuda.alloc(blocks * 2);
        cuda.copyAsync(m.quants(), q, qb);
        cuda.copyAsync(m.scales(), d, blocks * 2);
        return new GpuMatrix(m.type(), m.rows(), m.cols(), q, d, m.bytes());
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
