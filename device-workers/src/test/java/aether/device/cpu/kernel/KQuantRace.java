package aether.device.cpu.kernel;

import aether.device.cpu.bench.MatmulBenchmark;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Locale;

/**
 * One-core race of the Q4_K int8 decode kernels ({@link KQuantQ8Kernels}) on the same [rows x cols] matrix and Q8_K
 * activation row, called round-robin so that machine load hits both alike: the 256-bit kernel and the 512-bit one,
 * for Q4_K or Q6_K (4th argument). Prints each one's best and median pass in GB/s of weights read, and the largest
 * difference between their outputs (same integer sums, so only float summation order differs). {@code
 * scripts/jmh device-workers --main aether.device.cpu.kernel.KQuantRace [rows] [cols] [seconds] [Q4_K|Q6_K]}.
 */
public final class KQuantRace {
    private KQuantRace() {}

    public static void main(String[] args) {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 14336;
        int cols = args.length > 1 ? Integer.parseInt(args[1]) : 4096;
        double seconds = args.length > 2 ? Double.parseDouble(args[2]) : 30;
        GgmlType type = GgmlType.valueOf(args.length > 3 ? args[3] : "Q4_K");
        String[] names = {"256-bit", "512-bit"};
        try (Arena arena = Arena.ofShared()) {
            long rowBytes = type.bytesFor(cols);
            MemorySegment w = arena.allocate(rowBytes * rows, 64);
            MatmulBenchmark.fillWeights(type, w, 42);
            MemorySegment x = arena.allocate(4L * cols, 64);
            for (int i = 0; i < cols; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) Math.sin(i));
            }
            Q8KRows q = new Q8KRows();
            q.reserve(cols, 1);
            q.quantize(0, x, 0);
            MemorySegment[] y = new MemorySegment[names.length];
            for (int k = 0; k < y.length; k++) {
                y[k] = arena.allocate(4L * rows, 64);
            }
            long[][] t = new long[names.length][100000];
            int n = 0;
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long warm = System.nanoTime() + (long) (seconds * 0.2e9);
            while (System.nanoTime() < end && n < t[0].length) {
                for (int k = 0; k < names.length; k++) {
                    long t0 = System.nanoTime();
                    switch (k) {
                        case 0 -> {
                            if (type == GgmlType.Q6_K) {
                                KQuantQ8Kernels.rowsQ6_K(w, rowBytes, 0, rows, q, 1, y[k], 0);
                            } else {
                                KQuantQ8Kernels.rowsQ4_K(w, rowBytes, 0, rows, q, 1, y[k], 0);
                            }
                        }
                        default -> {
                            if (type == GgmlType.Q6_K) {
                                KQuantQ8Kernels.rowsQ6_KWide(w, rowBytes, 0, rows, q, 1, y[k], 0);
                            } else {
                                KQuantQ8Kernels.rowsQ4_KWide(w, rowBytes, 0, rows, q, 1, y[k], 0);
                            }
                        }
                    }
                    t[k][n] = System.nanoTime() - t0;
                }
                if (System.nanoTime() > warm) {
                    n++;
                }
            }
            for (int k = 0; k < names.length; k++) {
                long[] v = Arrays.copyOf(t[k], n);
                Arrays.sort(v);
                double diff = 0;
                for (long i = 0; i < rows; i++) {
                    diff = Math.max(diff, Math.abs(y[k].getAtIndex(ValueLayout.JAVA_FLOAT, i) - y[0].getAtIndex(ValueLayout.JAVA_FLOAT, i)));
                }
                System.out.printf(Locale.ROOT, "%-20s best %.1f GB/s, median %.1f GB/s (%d passes), max |y - y256| %.3g%n",
                        names[k], (double) w.byteSize() / v[0], (double) w.byteSize() / v[n / 2], n, diff);
            }
        }
    }
}
