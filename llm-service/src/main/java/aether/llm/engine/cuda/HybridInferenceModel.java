package aether.llm.engine.cuda;

import aether.device.cuda.CudaBuffer;
import aether.device.cuda.CudaDevice;
import aether.device.spi.DeviceBuffer;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.PagedInferenceModel;
import aether.llm.engine.Sequence;
import aether.llm.model.ModelConfig;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;
import jcuda.driver.CUdeviceptr;

/**
 * A model whose layers are split between the CPU and a GPU ({@code --gpu-layers N}): the CPU engine runs the token
 * embeddings and layers {@code [0, n - N)}, the GPU runs layers {@code [n - N, n)}, the output norm and the head. Each
 * part keeps the KV cache of its own layers; a {@link Sequence} of this model is one sequence in each part, kept at
 * the same length.
 *
 * <p>A step runs the CPU part first, which yields the residual stream after its last layer for every new token
 * ({@link PagedInferenceModel#step(List, float[], Output, float[])} with {@link Output#ALL_HIDDEN}); those rows cross
 * to the GPU through the device SPI ({@link CudaDevice#upload} into a {@link DeviceBuffer} of the device, booked
 * against its memory budget), and the GPU part continues from them ({@link CudaInferenceModel#stepFromHidden}) and
 * writes the logits. Only activations cross, n_embd floats per token, once per step; the weights stay where they were
 * loaded. If the GPU part fails after the CPU part ran, the CPU sequences are cut back, so no sequence changes.
 *
 * <p>Only {@link Output#LAST_LOGITS} (as the CUDA engine). Not thread-safe: one engine thread drives it.
 */
public final class HybridInferenceModel implements InferenceModel {

    private final PagedInferenceModel cpu;
    private final CudaInferenceModel gpu;
    private final CudaDevice device;
    private final Runnable onClose;
    private final int dim;
    /** Host rows of the CPU part's output, grown to the largest step. */
    private float[] residual = new float[0];
    /** Hand-over buffers by row capacity (powers of two), each with a host staging segment of the same size. */
    private final List<Handover> handovers = new ArrayList<>();
    private final Arena arena = Arena.ofShared();
    private boolean closed;

    private record Handover(int rows, DeviceBuffer buffer, MemorySegment staging) {}

    /**
     * Joins the two parts; {@code gpu} must continue where {@code cpu} stops. Closing this model closes both parts,
     * frees its hand-over buffers on {@code device}, closes {@code device}, then runs {@code onClose}.
     *
     * @throws IllegalArgumentException when the parts do not meet at one layer or were opened with different contexts
     */
    public HybridInferenceModel(PagedInferenceModel cpu, CudaInferenceModel gpu, CudaDevice device,
            Runnable onClose) {
        if (cpu.layers().first() != 0 || cpu.layers().end() != gpu.firstLayer()
                || cpu.layers().count() != gpu.config().blockCount()) {
            throw new IllegalArgumentException("CPU part of " + cpu.layers() + " and GPU part from layer "
                    + gpu.firstLayer() + " of " + gpu.config().blockCount() + " (expected the CPU to run [0, k) and "
                    + "the GPU [k, n))");
        }
        if (cpu.contextSize() != gpu.contextSize()) {
            throw new IllegalArgumentException("CPU part context " + cpu.contextSize() + ", GPU part context "
                    + gpu.contextSize() + " (expected equal)");
        }
        this.cpu = cpu;
        this.gpu = gpu;
        this.device = Objects.requireNonNull(device, "device");
        this.onClose = Objects.requireNonNull(onClose, "onClose");
        this.dim = cpu.config().embeddingLength();
    }

    /** The CPU part (layers [0, k)). */
    public PagedInferenceModel cpuPart() {
        return cpu;
    }

    /** The GPU part (layers [k, n), the output norm and head). */
    public CudaInferenceModel gpuPart() {
        return gpu;
    }

    /** Layers on the GPU. */
    /** Host memory of the CPU part's KV cache (the GPU part's is device memory). */
    public long hostKvCacheBytes() {
        return cpu.kvCacheBytes();
    }

    public int gpuLayers() {
        return config().blockCount() - gpu.firstLayer();
    }

    @Override
    public ModelConfig config() {
        return cpu.config();
    }

    @Override
    public int contextSize() {
        return cpu.contextSize();
    }

    @Override
    public Sequence newSequence() {
        checkOpen();
        Sequence c = cpu.newSequence();
        try {
            return new SplitSequence(c, gpu.newSequence());
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /** Last-token logits only, as the CUDA engine. */
    @Override
    public boolean computes(Output output) {
        return output == Output.LAST_LOGITS;
    }

    @Override
    public void step(List<BatchEntry> batch, Output output, float[] out) {
        checkOpen();
        if (output != Output.LAST_LOGITS) {
            throw new UnsupportedOperationException("a model split between CPU and GPU computes last-token logits "
                    + "only; " + output + " (prompt scoring, embeddings) needs --device cpu");
        }
        run(batch, out, null, null);
    }

    /** The GPU part takes the argmax of entries whose logits are not wanted (CudaInferenceModel's argmax_rows). */
    @Override
    public void step(List<BatchEntry> batch, float[] logits, boolean[] logitsWanted, int[] argmaxOut) {
        checkOpen();
        InferenceModel.checkArgmaxArrays(batch, logitsWanted, argmaxOut);
        run(batch, logits, logitsWanted, argmaxOut);
        // after both parts took the tokens: a flagged entry's error leaves the two halves of its sequence in step
        CudaInferenceModel.reportFlagged(batch.size(), config().vocabSize(), logits, logitsWanted, argmaxOut);
    }

    private void run(List<BatchEntry> batch, float[] out, boolean[] logitsWanted, int[] argmaxOut) {
        if (batch.isEmpty()) {
            throw new IllegalArgumentException("step of an empty batch");
        }
        List<BatchEntry> front = new ArrayList<>(batch.size()), back = new ArrayList<>(batch.size());
        var seen = new IdentityHashMap<SplitSequence, Boolean>();
        int tokens = 0;
        for (BatchEntry e : batch) {
            if (!(e.sequence() instanceof SplitSequence s) || s.owner() != this) {
                throw new IllegalArgumentException("sequence not created by this model");
            }
            if (seen.put(s, Boolean.TRUE) != null) {
                throw new IllegalArgumentException("a sequence appears twice in one step");
            }
            front.add(new BatchEntry(s.cpu, e.tokens(), e.from(), e.to()));
            back.add(new BatchEntry(s.gpu, e.tokens(), e.from(), e.to()));
            tokens += e.length();
        }
        if (residual.length < tokens * dim) {
            residual = new float[tokens * dim];
        }
        int[] before = new int[batch.size()];
        for (int i = 0; i < before.length; i++) {
            before[i] = front.get(i).sequence().length();
        }
        cpu.step(front, null, Output.ALL_HIDDEN, residual);   // checks ids, lengths, capacity; changes nothing on failure
        try {
            Handover h = handover(tokens);
            MemorySegment.copy(residual, 0, h.staging(), ValueLayout.JAVA_FLOAT_UNALIGNED, 0, tokens * dim);
            device.upload(h.staging(), h.buffer()).stage().toCompletableFuture().join();
            CUdeviceptr hidden = ((CudaBuffer) h.buffer()).pointer();
            if (logitsWanted == null) {
                gpu.stepFromHidden(back, hidden, out);
            } else {
                gpu.stepFromHidden(back, hidden, out, logitsWanted, argmaxOut);
            }
        } catch (RuntimeException e) {
            for (int i = 0; i < before.length; i++) {   // the GPU part did not take these tokens: neither has them
                front.get(i).sequence().truncate(before[i]);
            }
            throw e instanceof java.util.concurrent.CompletionException c && c.getCause() instanceof RuntimeException r
                    ? r : e;
        }
    }

    /** A hand-over buffer of at least {@code tokens} rows: the smallest power of two, kept for later steps. */
    private Handover handover(int tokens) {
        int rows = Integer.highestOneBit(Math.max(1, tokens - 1)) << (tokens > 1 ? 1 : 0);
        for (Handover h : handovers) {
            if (h.rows() == rows) {
                return h;
            }
        }
        long bytes = (long) rows * dim * Float.BYTES;
        DeviceBuffer buffer = device.allocate(bytes);
        Handover h = new Handover(rows, buffer, arena.allocate(bytes, 64));
        handovers.add(h);
        return h;
    }

    /**
     * The GPU part's device memory ({@link CudaInferenceModel#deviceRegions()}) and the hand-over buffers taken so far
     * (they grow with the largest step), for a memory manager's books.
     */
    public List<DeviceMemoryRegistration.Region> deviceRegions() {
        List<DeviceMemoryRegistration.Region> regions = new ArrayList<>(gpu.deviceRegions());
        for (Handover h : handovers) {
            regions.add(new DeviceMemoryRegistration.Region("hand-over rows (" + h.rows() + " x n_embd f32)",
                    h.buffer().byteSize(), aether.runtime.protocol.BufferOrigin.ACTIVATION));
        }
        return regions;
    }

    @Override
    public KvStats kvStats() {
        return gpu.kvStats();   // a sequence holds a whole GPU slot: the scarcer of the two parts' memory
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try (arena) {
            try {
                gpu.close();
            } finally {
                try {
                    cpu.close();
                } finally {
                    for (Handover h : handovers) {
                        device.free(h.buffer());
                    }
                    device.close();
                }
            }
        } finally {
            onClose.run();
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("model is closed");
        }
    }

    /** One sequence in each part, always of the same length. */
    private final class SplitSequence implements Sequence {
        final Sequence cpu;
        final Sequence gpu;

        SplitSequence(Sequence cpu, Sequence gpu) {
            this.cpu = cpu;
            this.gpu = gpu;
        }

        HybridInferenceModel owner() {
            return HybridInferenceModel.this;
        }

        @Override
        public int length() {
            return gpu.length();
        }

        @Override
        public void truncate(int length) {
            gpu.truncate(length);   // checks the length first
            cpu.truncate(length);
        }

        @Override
        public boolean isClosed() {
            return gpu.isClosed();
        }

        @Override
        public void close() {
            try {
                gpu.close();
            } finally {
                cpu.close();
            }
        }
    }
}
