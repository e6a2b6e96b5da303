package aether.device.cuda;

import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import jcuda.driver.CUdeviceptr;

/**
 * GPU micro-benchmark of the batched-decode GEMV ({@link CudaRowKernels#gemv}): one weight matrix times R activation
 * rows, each Q4_0/Q8_0 kernel of {@link CudaRowKernels.RowKernel} (mmq = the tiled int8 tensor-core GEMM, the
 * default; tc = the 16-row tensor-core GEMV; dp4a = the chunk GEMV in groups of 8), at Llama-8B shapes. Per R: µs per call and the weight bytes
 * read per second (once per call, as if each weight block came from HBM once), so R = 1 compares with {@link
 * CudaBench}'s GEMV and larger R shows how far the weight read is shared. Timed like {@link CudaBench}: a captured
 * graph rotating through weight copies that exceed the L2 cache, median of many.
 *
 * <p>{@code java -cp ... aether.device.cuda.CudaRowBench [--types Q4_0,Q8_0] [--rows 1,8,16,32,64] [--reps 20]}.
 */
public final class CudaRowBench {

    /** [rows (outputs), cols (inputs)] of Llama 8B: gate+up stacked, down, q+k+v stacked, output projection. */
    static final int[][] SHAPES = {{28672, 4096}, {4096, 14336}, {6144, 4096}, {4096, 4096}};

    private CudaRowBench() {}

    public static void main(String[] args) {
        List<GgmlType> types = List.of(GgmlType.Q4_0, GgmlType.Q8_0);
        int[] rowCounts = {1, 8, 16, 32, 64};
        int reps = 20;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--types" -> types = java.util.Arrays.stream(args[++i].split(",")).map(GgmlType::valueOf).toList();
                case "--rows" -> rowCounts = java.util.Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt)
                        .toArray();
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + " (expected --types T,T.. --rows R,R.. --reps N)");
            }
        }
        CudaDriver.Availability a = CudaDriver.availability();
        if (!a.available()) {
            System.out.println("CUDA " + a.describe());
            System.exit(2);
        }
        try (CudaContext cuda = CudaContext.open(0)) {
            System.out.println("row GEMV (batched decode) on " + cuda.name() + ": us per call; GB/s = weight bytes / "
                    + "time; M x K = rows out x cols in; mmq = tiled int8 tensor-core GEMM (default), tc = 16-row "
                    + "int8 tensor-core GEMV, dp4a = chunk GEMV in groups of 8");
            System.out.printf("| %-5s | %-13s | %4s | %9s | %9s | %9s | %8s | %8s | %9s |%n", "type", "M x K", "rows",
                    "mmq us", "tc us", "dp4a us", "mmq GB/s", "tc GB/s", "dp4a GB/s");
            System.out.printf("|-------|---------------|------|-----------|-----------|-----------|----------|----------"
                    + "|-----------|%n");
            for (GgmlType t : types) {
                for (int[] s : SHAPES) {
                    bench(cuda, t, s[0], s[1], rowCounts, reps);
                }
            }
        }
    }

    private static void bench(CudaContext cuda, GgmlType type, int m, int k, int[] rowCounts, int reps) {
        int maxRows = java.util.Arrays.stream(rowCounts).max().orElse(1);
        CudaKernels kernels = new CudaKernels(cuda);
        CudaRowKernels rk = new CudaRowKernels(cuda, maxRows);
        SplittableRandom r = new SplittableRandom(m * 31L + k);
        float[] w = new float[m * k];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextDouble() - 0.5) * 0.05f;
        }
        MemorySegment raw = Arena.ofAuto().allocate(type.bytesFor(w.length), 16);
        BlockCodecs.require(type).quantize(w, 0, w.length, raw, 0);
        GpuMatrix first = GpuMatrix.upload(cuda, type, m, k, raw, null);
        int copies = (int) Math.max(2, Math.min(16, (2L * cuda.l2Bytes()) / first.bytes() + 1));
        List<GpuMatrix> set = new ArrayList<>(List.of(first));
        for (int c = 1; c < copies; c++) {
            set.add(CudaBench.copyOf(cuda, first));
        }
        float[] x = new float[maxRows * k];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextDouble() * 2 - 1);
        }
        CUdeviceptr dx = cuda.alloc(x.length * 4L), y = cuda.alloc((long) maxRows * m * 4);
        cuda.upload(x, dx);
        QuantizedVector xq = QuantizedVector.allocate(cuda, x.length);
        kernels.quantize(dx, xq);
        try {
            for (int rows : rowCounts) {
                double mmq = time(cuda, set, rk, dx, xq, y, rows, CudaRowKernels.RowKernel.MMQ, reps);
                double tc = time(cuda, set, rk, dx, xq, y, rows, CudaRowKernels.RowKernel.MMA, reps);
                double dp = time(cuda, set, rk, dx, xq, y, rows, CudaRowKernels.RowKernel.DP4A, reps);
                System.out.printf(Locale.ROOT, "| %-5s | %-13s | %4d | %9.2f | %9.2f | %9.2f | %8.0f | %8.0f | %9.0f |%n",
                        type, m + " x " + k, rows, mmq, tc, dp, first.bytes() / (mmq * 1e3),
                        first.bytes() / (tc * 1e3), first.bytes() / (dp * 1e3));
            }
        } finally {
            for (GpuMatrix g : set) {
                g.free(cuda);
            }
            cuda.free(dx, x.length * 4L);
            cuda.free(y, (long) maxRows * m * 4);
            xq.free(cuda);
            rk.free();
        }
    }

    /** Median µs of one call, over graphs of one call per weight copy. */
    private static double time(CudaContext cuda, List<GpuMatrix> set, CudaRowKernels rk, CUdeviceptr dx,
            QuantizedVector xq, CUdeviceptr y, int rows, CudaRowKernels.RowKernel kernel, int reps) {
        rk.gemv(set.getFirst(), dx, xq, null, y, rows, kernel);  // eager once: a launch error shows here
        cuda.checkErrors("row gemv of " + rows + " rows");
        try (CudaContext.Graph graph = cuda.capture(() -> {
                    for (GpuMatrix g : set) {
                        rk.gemv(g, dx, xq, null, y, rows, kernel);
                    }
                });
                CudaContext.Timer timer = cuda.timer()) {
            for (int i = 0; i < 3; i++) {
                graph.launch();
            }
            double[] us = new double[reps];
            for (int i = 0; i < reps; i++) {
                timer.start();
                graph.launch();
                timer.stop();
                us[i] = timer.elapsedMillis() * 1e3 / set.size();
            }
            return CudaBench.median(us);
        }
    }
}
