package aether.runtime.quant.bench;

import aether.runtime.quant.BlockCodec;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Dequantization throughput of the K-quant codecs that have a Vector API path, vector against scalar in one run so
 * the report is a ratio. Blocks live off-heap, as in a mapped GGUF. Setup checks that both paths agree bit for bit.
 *
 * <p>{@code scripts/jmh runtime-actors KQuantDequantizeBenchmark -p type=Q4_K}
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-XX:+UseParallelGC"})
public class KQuantDequantizeBenchmark {

    @Param({"Q4_K", "Q5_K", "Q6_K"})
    public String type;

    @Param({"vector", "scalar"})
    public String path;

    /** Blocks of 256 elements per call. */
    @Param({"1", "207", "4097"})
    public int blocks;

    private Arena arena;
    private MemorySegment src;
    private float[] dst;
    private BlockCodec codec;

    @Setup(Level.Trial)
    public void setUp() throws ReflectiveOperationException {
        codec = codec(type, path.equals("vector"));
        BlockCodec other = codec(type, !path.equals("vector"));
        int blockBytes = codec.type().blockBytes();
        arena = Arena.ofConfined();
        src = arena.allocate((long) blocks * blockBytes);
        Random r = new Random(1);
        byte[] raw = new byte[blockBytes];
        for (int b = 0; b < blocks; b++) {
            r.nextBytes(raw);
            MemorySegment.copy(MemorySegment.ofArray(raw), 0, src, (long) b * blockBytes, blockBytes);
            // finite, moderate f16 scales (d, dmin or Q6_K's d) so the work is the ordinary case
            long dOffset = codec.type().name().equals("Q6_K") ? 208 : 0;
            src.set(ValueLayout.JAVA_SHORT_UNALIGNED, (long) b * blockBytes + dOffset, Float.floatToFloat16(0.01f * r.nextFloat()));
            if (dOffset == 0) {
                src.set(ValueLayout.JAVA_SHORT_UNALIGNED, (long) b * blockBytes + 2, Float.floatToFloat16(0.01f * r.nextFloat()));
            }
        }
        dst = new float[blocks * 256];
        float[] check = new float[blocks * 256];
        codec.dequantize(src, 0, dst, 0, dst.length);
        other.dequantize(src, 0, check, 0, check.length);
        if (!Arrays.equals(dst, check)) {
            throw new IllegalStateException(type + ": vector and scalar dequantization differ");
        }
    }

    private static BlockCodec codec(String type, boolean vector) throws ReflectiveOperationException {
        var ctor = Class.forName("aether.runtime.quant." + type + "Codec").getDeclaredConstructor(boolean.class);
        ctor.setAccessible(true); // the path-forcing constructor is package-private
        return (BlockCodec) ctor.newInstance(vector);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public float dequantize() {
        codec.dequantize(src, 0, dst, 0, dst.length);
        return dst[dst.length - 1];
    }
}
