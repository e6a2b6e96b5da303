package aether.device.cpu.kernel;

import aether.device.cpu.KernelPool;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.util.Locale;
import java.util.Random;

/**
 * The process-wide order that once left the prefill GEMM boxing every vector: a fresh JVM runs a few cold decode
 * multiplies (one token, the int8 kernels, whose interpreted Vector API fallbacks store vectors into
 * {@code byte[]}-backed segments) before the first prefill multiply, then runs the prefill GEMM until C2 has compiled
 * it and prints the bytes allocated per warm GEMM call ({@code bytes-per-gemm N}). Its own process because the JIT
 * state it depends on is process-wide: {@link JitOrderAllocationTest} starts it.
 * Usage: {@code GemmAfterDecodeProbe TYPE decode-first|prefill-first}.
 */
public final class GemmAfterDecodeProbe {
    static final int ROWS = 64;           // the prefill GEMM's weights
    static final int COLS = 512;
    static final int DECODE_ROWS = 2048;   // the decode steps' weights: a large cold matrix, as a model's first step has
    static final int DECODE_COLS = 2048;
    static final int TOKENS = 16;

    private GemmAfterDecodeProbe() {}

    /**
     * What {@code AbstractVector.defaultReinterpret} (JDK 25) does for every {@code reinterpretAsInts()} and the like
     * while the calling kernel runs in the interpreter or C1: the vector is stored into a fresh
     * {@code MemorySegment.ofArray(new byte[..])} and read back. A model's first decode step does this ~10^5 times (every
     * block of every int8 kernel, 22 layers, before C2 has them); the small decode matrix above does fewer, so this
     * adds the rest. These stores share their JDK-internal receiver profile with every {@code intoMemorySegment}.
     */
    static void reinterpretFallbackStores() {
        var v = jdk.incubator.vector.FloatVector.zero(jdk.incubator.vector.FloatVector.SPECIES_256);
        for (int i = 0; i < 100_000; i++) {
            v.intoMemorySegment(MemorySegment.ofArray(new byte[32]), 0, java.nio.ByteOrder.nativeOrder());
        }
    }

    public static void main(String[] args) {
        GgmlType type = GgmlType.valueOf(args[0]);
        boolean decodeFirst = switch (args[1]) {
            case "decode-first" -> true;
            case "prefill-first" -> false;
            default -> throw new IllegalArgumentException("order: '" + args[1] + "' (expected decode-first or prefill-first)");
        };
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        Random rnd = new Random(5);
        try (Arena arena = Arena.ofShared(); KernelPool pool = new KernelPool(1, 0)) {
            MemorySegment w = RandomWeights.create(arena, type, ROWS, COLS, rnd);
            MemorySegment x = arena.allocate(4L * TOKENS * COLS, 64);
            for (int i = 0; i < TOKENS * COLS; i++) {
                x.setAtIndex(BlockLayouts.F32, i, rnd.nextFloat() * 2 - 1);
            }
            MemorySegment y = arena.allocate(4L * TOKENS * ROWS, 64);
            MemorySegment dw = RandomWeights.create(arena, type, DECODE_ROWS, DECODE_COLS, rnd);
            MemorySegment dx = arena.allocate(4L * DECODE_COLS, 64);
            for (int i = 0; i < DECODE_COLS; i++) {
                dx.setAtIndex(BlockLayouts.F32, i, rnd.nextFloat() * 2 - 1);
            }
            MemorySegment dy = arena.allocate(4L * DECODE_ROWS, 64);
            Matmul matmul = new Matmul(pool, true, Matmul.Activations.AUTO);
            if (decodeFirst) {
                for (int i = 0; i < 3; i++) {
                    matmul.multiply(type, dw, DECODE_ROWS, DECODE_COLS, dx, 1, dy);
                }
                reinterpretFallbackStores();
            }
            for (int i = 0; i < 4000; i++) {   // C2 compiles the GEMM's dequantizer and tile well before this ends
                matmul.multiply(type, w, ROWS, COLS, x, TOKENS, y);
            }
            int calls = 200;
            long b0 = mx.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < calls; i++) {
                matmul.multiply(type, w, ROWS, COLS, x, TOKENS, y);
            }
            long bytes = mx.getCurrentThreadAllocatedBytes() - b0;
            System.out.printf(Locale.ROOT, "bytes-per-gemm %d%n", bytes / calls);
        }
    }
}
