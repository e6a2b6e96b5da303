package aether.device.cpu.bench;

import aether.device.cpu.KernelPool;
import aether.device.cpu.RangeTask;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The machine's read bandwidth, measured the way a GEMV reads weights: every pool thread streams its contiguous share
 * of an off-heap buffer much larger than the LLC, summing 64-bit lanes (4 accumulators, so the adds never limit).
 * The buffer is touched once at creation so page faults are not measured.
 */
public final class BandwidthProbe implements RangeTask, AutoCloseable {
    private static final VectorSpecies<Long> L = LongVector.SPECIES_256;
    private static final int CHUNK = 1 << 16;   // split unit: 64 KiB

    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer;
    private final long[] sums = new long[4096];

    public BandwidthProbe(long bytes) {
        buffer = arena.allocate(bytes, 4096);
        for (long o = 0; o < bytes; o += 8) {
            buffer.set(java.lang.foreign.ValueLayout.JAVA_LONG, o, o);
        }
    }

    public long bytes() {
        return buffer.byteSize();
    }

    /** One full pass over the buffer on {@code pool}; returns a checksum so the reads cannot be eliminated. */
    public long pass(KernelPool pool) {
        pool.parallelFor((int) (buffer.byteSize() / CHUNK), 1, this);
        long s = 0;
        for (int i = 0; i < pool.threads(); i++) {
            s += sums[i * 8];
        }
        return s;
    }

    /** Best of {@code passes} passes, in GB/s (10⁹ bytes per second). */
    public double measureGBps(KernelPool pool, int passes) {
        double best = 0;
        for (int i = 0; i < passes; i++) {
            long t0 = System.nanoTime();
            pass(pool);
            best = Math.max(best, (double) buffer.byteSize() / (System.nanoTime() - t0));
        }
        return best;
    }

    @Override
    public void run(int from, int to, int thread) {
        long sum = 0;
        for (int c = from; c < to; c++) {
            sum += chunk(buffer, (long) c * CHUNK);
        }
        sums[thread * 8] = sum;   // 64 bytes apart: no false sharing between threads
    }

    /**
     * Sums one 64 KiB chunk. A method per chunk, not one loop over the whole range: a pass is only a few calls, and
     * a single huge loop would run on an OSR compile, where the Vector API was measured ~30x slower (boxed).
     */
    private static long chunk(MemorySegment buffer, long start) {
        var a0 = LongVector.zero(L);
        var a1 = LongVector.zero(L);
        var a2 = LongVector.zero(L);
        var a3 = LongVector.zero(L);
        for (long o = start, end = start + CHUNK; o < end; o += 128) {
            a0 = a0.add(LongVector.fromMemorySegment(L, buffer, o, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(LongVector.fromMemorySegment(L, buffer, o + 32, ByteOrder.LITTLE_ENDIAN));
            a2 = a2.add(LongVector.fromMemorySegment(L, buffer, o + 64, ByteOrder.LITTLE_ENDIAN));
            a3 = a3.add(LongVector.fromMemorySegment(L, buffer, o + 96, ByteOrder.LITTLE_ENDIAN));
        }
        return a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
    }

    @Override
    public void close() {
        arena.close();
    }
}
