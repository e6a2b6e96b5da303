package aether.device.cpu.bench;

import aether.device.cpu.KernelPool;
import aether.device.cpu.kernel.Matmul;
import aether.device.cpu.kernel.PackedWeights;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * {@link Matmul} at the shapes of real models, shape = {@code tokens x in x out} ([tokens,in]×[in,out]):
 * decode GEMVs of a 1B (2048²), a 7B FFN (4096→14336) and a 32k-vocab output head (2048→32000), and a prefill GEMM
 * of 128 tokens through a 4096² projection. Each iteration prints, besides JMH's time per op, the figure that
 * matters: for decode, GB/s of weights read and the fraction of the machine's read bandwidth measured in the same
 * trial by {@link BandwidthProbe} (1 GiB, same pool); for prefill, GFLOP/s (2·tokens·in·out per op).
 *
 * <p>Example: {@code -p type=Q4_0 -p shape=1x4096x14336 -p activations=FLOAT,Q8,AUTO -p prepared=false,true}.
 * Activations only matter for quantized decode on the ggml layout; {@code prepared=true} multiplies
 * {@link PackedWeights#prepare}d weights (Q4_0: the planar repacked layout, whose decode always uses Q8 activations;
 * other types: wrapped, identical to the ggml-layout call) and reports its bytes read.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
// The product's GC (G1, the default): under ParallelGC C2 does not strip-mine loops and the GEMM tile spills (GemmTile)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g"})
public class MatmulBenchmark {
    @Param({"Q4_0", "Q8_0", "F16", "BF16", "F32", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"})
    public String type;

    @Param({"1x2048x2048", "1x4096x14336", "1x2048x32000", "128x4096x4096"})
    public String shape;

    @Param({"FLOAT", "Q8", "AUTO"})
    public String activations;

    /** Multiply {@link PackedWeights#prepare}d weights instead of the ggml layout. */
    @Param({"false", "true"})
    public boolean prepared;

    /** Pool threads, caller included; 0 = available processors. */
    @Param({"0"})
    public int threads;

    @Param({"true"})
    public boolean vector;

    private Arena arena;
    private KernelPool pool;
    private Matmul matmul;
    private GgmlType ggmlType;
    private MemorySegment w;
    private PackedWeights packed;
    private MemorySegment x;
    private MemorySegment y;
    private int tokens;
    private int in;
    private int out;
    private double readGBps;
    private long calls;
    private long startNs;

    @Setup(Level.Trial)
    public void setUp() {
        String[] dims = shape.split("x");
        tokens = Integer.parseInt(dims[0]);
        in = Integer.parseInt(dims[1]);
        out = Integer.parseInt(dims[2]);
        ggmlType = GgmlType.valueOf(type);
        pool = new KernelPool(threads == 0 ? Runtime.getRuntime().availableProcessors() : threads, KernelPool.DEFAULT_SPIN_NS);
        matmul = new Matmul(pool, vector, Matmul.Activations.valueOf(activations));
        arena = Arena.ofShared();
        w = arena.allocate(ggmlType.bytesFor(in) * out, 64);
        fillWeights(ggmlType, w, 42);
        packed = prepared ? PackedWeights.prepare(ggmlType, w, out, in, arena) : null;
        x = arena.allocate((long) tokens * in * Float.BYTES, 64);
        y = arena.allocate((long) tokens * out * Float.BYTES, 64);
        long s = 7;
        for (long i = 0; i < (long) tokens * in; i++) {
            s = s * 6364136223846793005L + 1442695040888963407L;
            x.setAtIndex(ValueLayout.JAVA_FLOAT, i, ((s >>> 40) / (float) (1 << 24)) * 2 - 1);
        }
        if (tokens < Matmul.GEMM_MIN_TOKENS) {
            try (BandwidthProbe probe = new BandwidthProbe(1L << 30)) {
                readGBps = probe.measureGBps(pool, 5);
            }
        }
        multiply();
        calls = 0;
        for (long i = 0; i < (long) tokens * out; i++) {
            if (!Float.isFinite(y.getAtIndex(ValueLayout.JAVA_FLOAT, i))) {
                throw new IllegalStateException("non-finite output at " + i);
            }
        }
    }

    /** Valid random weights: finite values for float types, random quants with sane f16 scales for block types. */
    public static void fillWeights(GgmlType t, MemorySegment w, long seed) {
        long s = seed;
        long n = w.byteSize();
        switch (t) {
            case F32 -> {
                for (long i = 0; i < n / 4; i++) {
                    s = s * 6364136223846793005L + 1442695040888963407L;
                    w.setAtIndex(ValueLayout.JAVA_FLOAT, i, ((s >>> 40) / (float) (1 << 24)) - 0.5f);
                }
            }
            case F16, BF16 -> {
                for (long i = 0; i < n / 2; i++) {
                    s = s * 6364136223846793005L + 1442695040888963407L;
                    float v = ((s >>> 40) / (float) (1 << 24)) - 0.5f;
                    short h = t == GgmlType.F16 ? Float.floatToFloat16(v) : (short) (Float.floatToRawIntBits(v) >>> 16);
                    w.setAtIndex(ValueLayout.JAVA_SHORT, i, h);
                }
            }
            default -> {
                for (long i = 0; i + 8 <= n; i += 8) {
                    s = s * 6364136223846793005L + 1442695040888963407L;
                    w.set(ValueLayout.JAVA_LONG_UNALIGNED, i, s);
                }
                // every f16 field must be a sane scale: random bits would give NaN, Inf or subnormal scales, and
                // subnormal arithmetic alone makes x86 FMAs ~50x slower
                int[] halves = switch (t) {
                    case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
                    case Q2_K -> new int[] {80, 82};
                    case Q3_K -> new int[] {108};
                    case Q6_K -> new int[] {208};
                    default -> new int[] {0};
                };
                for (long b = 0; b < n / t.blockBytes(); b++) {
                    for (int h : halves) {
                        w.set(ValueLayout.JAVA_SHORT_UNALIGNED, b * t.blockBytes() + h, Float.floatToFloat16(0.01f));
                    }
                }
            }
        }
    }

    @Setup(Level.Iteration)
    public void startIteration() {
        calls = 0;
        startNs = System.nanoTime();
    }

    @Benchmark
    public MemorySegment multiply() {
        calls++;
        if (packed != null) {
            matmul.multiply(packed, x, tokens, y);
        } else {
            matmul.multiply(ggmlType, w, out, in, x, tokens, y);
        }
        return y;
    }

    @TearDown(Level.Iteration)
    public void report() {
        double ns = System.nanoTime() - startNs;
        if (tokens < Matmul.GEMM_MIN_TOKENS) {
            double bytes = packed != null ? packed.decodeBytes() : w.byteSize();
            double gbps = calls * bytes / ns;
            System.out.printf("%n  [decode %s %s %s %s threads=%d] %.1f GB/s of weights = %.2f of read bandwidth %.1f GB/s%n",
                    type, shape, activations, packed != null ? packed.layout() : "GGUF", pool.threads(), gbps,
                    gbps / readGBps, readGBps);
        } else {
            double gflops = calls * 2.0 * tokens * in * out / ns;
            System.out.printf("%n  [prefill %s %s %s threads=%d] %.1f GFLOP/s%n", type, shape,
                    packed != null ? packed.layout() : "GGUF", pool.threads(), gflops);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
        arena.close();
    }
}
