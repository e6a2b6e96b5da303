package aether.device.cpu.bench;

import aether.device.cpu.KernelPool;
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
 * Sequential read bandwidth over a 1 GiB off-heap buffer on the kernel pool: the ceiling {@link MatmulBenchmark}'s
 * GEMV figures are a fraction of. GB/s = 1.073741824 / (seconds per op); the per-iteration line prints it directly.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-XX:+UseParallelGC"})
public class ReadBandwidthBenchmark {
    @Param({"1", "2"})
    public int threads;

    private KernelPool pool;
    private BandwidthProbe probe;
    private long calls;
    private long startNs;

    @Setup(Level.Trial)
    public void setUp() {
        pool = new KernelPool(threads, KernelPool.DEFAULT_SPIN_NS);
        probe = new BandwidthProbe(1L << 30);
    }

    @Setup(Level.Iteration)
    public void startIteration() {
        calls = 0;
        startNs = System.nanoTime();
    }

    @Benchmark
    public long read() {
        calls++;
        return probe.pass(pool);
    }

    @TearDown(Level.Iteration)
    public void report() {
        double gbps = (double) calls * probe.bytes() / (System.nanoTime() - startNs);
        System.out.printf("%n  [read bandwidth] threads=%d: %.1f GB/s%n", threads, gbps);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
        probe.close();
    }
}
