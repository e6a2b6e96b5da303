package aether.llm.synth;

import aether.llm.synth.SyntheticModel.PlannedTensor;
import aether.runtime.quant.BlockCodec;
import aether.runtime.quant.BlockCodecs;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Produces a planned tensor's encoded bytes for the GGUF writer's windows. The tensor is cut into chunks of whole
 * rows (about {@link #CHUNK_ELEMENTS} elements, independent of the thread count); chunk {@code c} is drawn from its
 * own random stream and quantized on a pool thread, and a batch of chunks is staged ahead of the windows. So the
 * bytes are the same for any number of threads, and memory stays at a few batches of chunks.
 *
 * <p>Confined to the writer's thread (the pool is internal).
 */
final class RowGenerator implements AutoCloseable {

    static final int CHUNK_ELEMENTS = 1 << 16;
    private static final int CHUNKS_PER_THREAD = 4;

    private final long seed;
    private final int threads;
    private final ExecutorService pool;

    private int tensorIndex = -1;
    private long stagedStart;           // tensor byte offset of staging[0]
    private long stagedEnd;
    private byte[] staging = new byte[0];

    RowGenerator(long seed, int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads: %d (expected: 1+)".formatted(threads));
        }
        this.seed = seed;
        this.threads = threads;
        this.pool = threads == 1 ? null : Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "aether-synth");
            t.setDaemon(true);
            return t;
        });
    }

    /** Writes bytes {@code [offset, offset + window.byteSize())} of tensor number {@code index} into the window. */
    void fill(int index, PlannedTensor tensor, long offset, MemorySegment window) {
        if (index != tensorIndex) {
            tensorIndex = index;
            stagedStart = stagedEnd = 0;
        }
        long pos = offset, end = offset + window.byteSize();
        while (pos < end) {
            if (pos < stagedStart || pos >= stagedEnd) {
                stage(index, tensor, pos);
            }
            long n = Math.min(end, stagedEnd) - pos;
            MemorySegment.copy(MemorySegment.ofArray(staging), pos - stagedStart, window, pos - offset, n);
            pos += n;
        }
    }

    /** Encodes the batch of chunks that starts with the chunk holding byte {@code pos}. */
    private void stage(int index, PlannedTensor tensor, long pos) {
        long rowLength = tensor.ne()[0];
        long rows = tensor.elements() / rowLength;
        long rowBytes = tensor.type().bytesFor(rowLength);
        long rowsPerChunk = Math.max(1, CHUNK_ELEMENTS / rowLength);
        long chunkBytes = rowsPerChunk * rowBytes;
        long chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
        long first = pos / chunkBytes;
        long last = Math.min(chunks, first + (long) threads * CHUNKS_PER_THREAD);
        long bytes = Math.min(tensor.bytes(), last * chunkBytes) - first * chunkBytes;
        if (staging.length < bytes) {
            staging = new byte[Math.toIntExact(bytes)];
        }
        MemorySegment out = MemorySegment.ofArray(staging);
        BlockCodec codec = BlockCodecs.require(tensor.type());
        List<Callable<Void>> tasks = new ArrayList<>();
        for (long c = first; c < last; c++) {
            long chunk = c;
            int chunkRows = (int) Math.min(rowsPerChunk, rows - c * rowsPerChunk);
            tasks.add(() -> {
                int count = Math.toIntExact(chunkRows * rowLength);
                float[] values = new float[count];
                RandomRows.gaussian(seed, index, chunk, tensor.mean(), tensor.std(), values, count);
                codec.quantize(values, 0, count, out, (chunk - first) * chunkBytes);
                return null;
            });
        }
        runAll(tasks);
        stagedStart = first * chunkBytes;
        stagedEnd = stagedStart + bytes;
    }

    private void runAll(List<Callable<Void>> tasks) {
        try {
            if (pool == null) {
                for (Callable<Void> t : tasks) {
                    t.call();
                }
                return;
            }
            for (Future<Void> f : pool.invokeAll(tasks)) {
                f.get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while generating weights", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("generating weights failed: " + e.getCause(), e.getCause());
        } catch (Exception e) {
            throw new IllegalStateException("generating weights failed: " + e, e);
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
