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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Dequantization throughput per ggml type, single thread: blocks fill {@link #BUFFER_BYTES} (twice the last-level
 * cache, so they stream from memory); one op expands the next {@link #BYTES_PER_OP} of them, walking the buffer
 * cyclically, row by row into a small f32 buffer that stays in L1 — the access pattern of a kernel that dequantizes
 * weights on the fly. Ops are short so that even slow types get enough invocations for the JIT to finish. {@link DequantizeReport} turns the times into GB/s of
 * blocks read and divides by the read bandwidth measured in the same run.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class DequantizeBenchmark {

    /** 64 MiB: twice this machine's 32 MiB L3. */
    public static final long BUFFER_BYTES = 64L << 20;
    /** About 1 MiB of blocks per op. */
    public static final long BYTES_PER_OP = 1L << 20;
    static final int ROW = 4096;

    @Param({"F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
            "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S",
            "IQ1_S", "IQ1_M"})
    public String type;

    private Arena arena;
    private MemorySegment blocks;
    private BlockCodec codec;
    private long rowBytes;
    private int rows;
    private int rowsPerOp;
    private int cursor;
    private final float[] out = new float[ROW];

    @Setup(Level.Trial)
    public void setUp() {
        GgmlType t = GgmlType.valueOf(type);
        codec = BlockCodecs.require(t);
        rowBytes = t.bytesFor(ROW);
        rows = (int) (BUFFER_BYTES / rowBytes);
        rowsPerOp = rowsPerOp(t);
        arena = Arena.ofShared();
        blocks = arena.allocate(rows * rowBytes, 64);
        fillRealisticBlocks(codec, blocks, rowBytes, rows);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    /** Expands the next {@link #rowsPerOp} rows; returns a checksum so the work cannot be eliminated. */
    @Benchmark
    public float dequantizeRows() {
        float acc = 0;
        int r = cursor;
        for (int i = 0; i < rowsPerOp; i++, r++) {
            if (r == rows) {
                r = 0;
            }
            codec.dequantize(blocks, r * rowBytes, out, 0, ROW);
            acc += out[i & (ROW - 1)];
        }
        cursor = r;
        return acc;
    }

    static int rowsPerOp(GgmlType t) {
        return (int) Math.max(1, BYTES_PER_OP / t.bytesFor(ROW));
    }

    /** Bytes one benchmark op reads. */
    public static long bytesPerOp(GgmlType t) {
        return rowsPerOp(t) * t.bytesFor(ROW);
    }

    /**
     * Blocks as a model would hold them: quantized Gaussian rows where the type has a quantizer; otherwise random
     * bytes, re-drawn per block until the block decodes to finite, normal-range values (random scales would
     * otherwise produce subnormals, which are slow on x86 and would measure the wrong thing).
     */
    static void fillRealisticBlocks(BlockCodec codec, MemorySegment blocks, long rowBytes, int rows) {
        SplittableRandom random = new SplittableRandom(42);
        GgmlType t = codec.type();
        float[] row = new float[ROW];
        if (codec.canQuantize()) {
            for (int r = 0; r < rows; r++) {
                for (int i = 0; i < ROW; i++) {
                    row[i] = (float) (random.nextGaussian() * 0.02);
                }
                codec.quantize(row, 0, ROW, blocks, r * rowBytes);
            }
            return;
        }
        int blockBytes = t.blockBytes();
        byte[] block = new byte[blockBytes];
        float[] decoded = new float[t.blockSize()];
        MemorySegment scratch = MemorySegment.ofArray(block);
        for (long off = 0; off < rows * rowBytes; off += blockBytes) {
            for (int attempt = 0; ; attempt++) {
                random.nextBytes(block);
                codec.dequantize(scratch, 0, decoded, 0, decoded.length);
                if (normalRange(decoded) || attempt > 1000) {
                    break;
                }
            }
            MemorySegment.copy(scratch, 0, blocks, off, blockBytes);
        }
    }

    private static boolean normalRange(float[] values) {
        for (float v : values) {
            if (!Float.isFinite(v) || v != 0 && Math.abs(v) < Float.MIN_NORMAL * 1e3f || Math.abs(v) > 1e6f) {
                return false;
            }
        }
        return true;
    }
}
