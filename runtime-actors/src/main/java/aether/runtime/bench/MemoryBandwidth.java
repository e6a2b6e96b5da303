package aether.runtime.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.DoubleAdder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Measures this machine's sustained memory read bandwidth the way STREAM does (best of several passes over a buffer
 * far larger than the last-level cache), so that kernel and end-to-end benchmarks can report a fraction of it
 * measured in the same run instead of an absolute number that means nothing on another machine.
 *
 * <p>Each thread sums its own contiguous slice with vector loads; the sum is returned so the JIT cannot drop the
 * reads. Not thread-safe; allocates its buffer off-heap and frees it before returning.
 */
public final class MemoryBandwidth {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static volatile double blackhole;

    /** One measurement: bytes read per pass, the threads that read them, and the best pass's rate. */
    public record Result(int threads, long bufferBytes, int passes, double readGBs) {
        @Override
        public String toString() {
            return "%.1f GB/s read (%d thread%s, %d MiB buffer, best of %d)"
                    .formatted(readGBs, threads, threads == 1 ? "" : "s", bufferBytes >> 20, passes);
        }
    }

    private MemoryBandwidth() {}

    /** Read bandwidth with as many threads as cores, over a 512 MiB buffer, best of 8 passes. */
    public static Result measureRead() {
        return measureRead(Runtime.getRuntime().availableProcessors(), 512L << 20, 8);
    }

    /**
     * Read bandwidth of {@code threads} threads each summing a disjoint slice of a {@code bufferBytes} buffer.
     *
     * @throws IllegalArgumentException if threads < 1, passes < 1, or the buffer is smaller than 1 MiB per thread
     */
    public static Result measureRead(int threads, long bufferBytes, int passes) {
        if (threads < 1 || passes < 1) {
            throw new IllegalArgumentException("threads: %d, passes: %d (expected: 1+)".formatted(threads, passes));
        }
        long chunk = bufferBytes / threads / F.vectorByteSize() / 4 * F.vectorByteSize() * 4;
        if (chunk < (1 << 20)) {
            throw new IllegalArgumentException("bufferBytes: %d (expected: at least 1 MiB per thread)".formatted(bufferBytes));
        }
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buffer = arena.allocate(chunk * threads, 64);
            buffer.fill((byte) 0x3f);                            // touches every page: 0x3f3f3f3f is 0.747f
            double best = 0;
            DoubleAdder sink = new DoubleAdder();
            for (int pass = 0; pass < passes + 1; pass++) {      // pass 0 warms the JIT and the page tables
                long ns = timedPass(buffer, threads, chunk, sink);
                if (pass > 0) {
                    best = Math.max(best, (double) (chunk * threads) / ns);
                }
            }
            blackhole = sink.sum();                              // keeps the sums, and so the reads, alive
            return new Result(threads, chunk * threads, passes, best);
        }
    }

    private static long timedPass(MemorySegment buffer, int threads, long chunk, DoubleAdder sink) {
        CyclicBarrier start = new CyclicBarrier(threads + 1);
        CyclicBarrier end = new CyclicBarrier(threads + 1);
        Thread[] workers = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            MemorySegment slice = buffer.asSlice(t * chunk, chunk);
            workers[t] = Thread.ofPlatform().daemon().start(() -> {
                await(start);
                sink.add(sum(slice));
                await(end);
            });
        }
        await(start);
        long t0 = System.nanoTime();
        await(end);
        long ns = System.nanoTime() - t0;
        for (Thread w : workers) {
            try {
                w.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while measuring bandwidth", e);
            }
        }
        return ns;
    }

    /** Four independent accumulators keep several loads in flight; one reduction at the end. */
    static float sum(MemorySegment s) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        long step = 4L * F.vectorByteSize(), n = s.byteSize() - s.byteSize() % step;
        for (long o = 0; o < n; o += step) {
            a0 = a0.add(FloatVector.fromMemorySegment(F, s, o, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(FloatVector.fromMemorySegment(F, s, o + F.vectorByteSize(), ByteOrder.LITTLE_ENDIAN));
            a2 = a2.add(FloatVector.fromMemorySegment(F, s, o + 2L * F.vectorByteSize(), ByteOrder.LITTLE_ENDIAN));
            a3 = a3.add(FloatVector.fromMemorySegment(F, s, o + 3L * F.vectorByteSize(), ByteOrder.LITTLE_ENDIAN));
        }
        return a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
    }

    private static void await(CyclicBarrier barrier) {
        try {
            barrier.await();
        } catch (Exception e) {
            throw new IllegalStateException("bandwidth probe thread failed", e);
        }
    }

    /** Prints the read bandwidth for 1 thread and for all cores. */
    public static void main(String[] args) {
        int cores = Runtime.getRuntime().availableProcessors();
        System.out.println("1 thread:  " + measureRead(1, 512L << 20, 8));
        System.out.println(cores + " threads: " + measureRead(cores, 512L << 20, 8));
    }
}
