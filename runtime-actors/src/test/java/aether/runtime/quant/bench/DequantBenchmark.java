package aether.runtime.quant.bench;

import aether.runtime.quant.BlockCodec;
import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Dequantization throughput, Vector API path against the scalar reference ({@code -Daether.vector=false} in its own
 * fork), so the report reads as a ratio per type. Sizes: one 32-element block, an odd 207 blocks, a 4096-wide row.
 * Smoke run: {@code -f 1 -wi 1 -i 1 -w 1s -r 1s}; the vector paths need several seconds of warm-up on a busy machine.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
public class DequantBenchmark {

    @Param({"F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"})
    public String type;

    @Param({"32", "6624", "4096"})
    public int count;

    private BlockCodec codec;
    private MemorySegment src;
    private float[] dst;

    @Setup(Level.Trial)
    public void setUp() {
        GgmlType t = GgmlType.valueOf(type);
        codec = BlockCodecs.require(t);
        float[] values = new float[count];
        SplittableRandom random = new SplittableRandom(1);
        for (int i = 0; i < count; i++) {
            values[i] = (float) (random.nextDouble() - 0.5);
        }
        // Off-heap, like a mapped GGUF: the JDK 25 Vector API does not intrinsify short loads from a byte[]-backed
        // heap segment (mismatched element type), so a heap segment would understate the F16/BF16 vector paths.
        src = Arena.ofAuto().allocate(t.bytesFor(count), 64);
        codec.quantize(values, 0, count, src, 0);
        dst = new float[count];
    }

    @Benchmark
    public float[] vector() {
        codec.dequantize(src, 0, dst, 0, count);
        return dst;
    }

    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Daether.vector=false"})
    public float[] scalar() {
        codec.dequantize(src, 0, dst, 0, count);
        return dst;
    }
}
