package aether.device.cuda;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import jcuda.driver.CUdeviceptr;

/**
 * A weight matrix in device memory: {@code rows} output features of {@code cols} elements each, in the layout the
 * GEMV kernels read. Q4_0 and Q8_0 are repacked at upload from the GGUF blocks into their quants ({@link #quants()})
 * and f16 scales ({@link #scales()}) — the same numbers, split so each block's quants are aligned 16-byte loads; F16
 * and F32 stay as stored ({@link #scales()} is null).
 */
public record GpuMatrix(GgmlType type, int rows, int cols, CUdeviceptr quants, CUdeviceptr scales, long bytes) {

    /** The types this increment's kernels read as matrices (GEMV) and embedding tables (row lookup). */
    public static boolean supports(GgmlType type) {
        return type == GgmlType.Q4_0 || type == GgmlType.Q8_0 || type == GgmlType.F16 || type == GgmlType.F32;
    }

    /**
     * Uploads {@code raw} (rows × cols elements in GGUF's storage of {@code type}, e.g. a slice of a mapped file) and
     * repacks it on the device. {@code staging}, when not null, is a device buffer of at least {@code raw.byteSize()}
     * bytes to reuse for the raw blocks; otherwise one is allocated and freed here.
     */
    public static GpuMatrix upload(CudaContext cuda, GgmlType type, int rows, int cols, MemorySegment raw,
            CUdeviceptr staging) {
        return upload(cuda, type, rows, cols, java.util.List.of(raw), staging);
    }

    /**
     * Like {@link #upload(CudaContext, GgmlType, int, int, MemorySegment, CUdeviceptr)} for a matrix whose rows come
     * in several parts (e.g. the Q, K and V projections stacked into one matrix, so one GEMV computes all three):
     * rows are row-major, so the parts' bytes one after another are the stacked matrix.
     */
    public static GpuMatrix upload(CudaContext cuda, GgmlType type, int rows, int cols, java.util.List<MemorySegment> parts,
            CUdeviceptr staging) {
        if (!supports(type)) {
            throw new IllegalArgumentException("matrix type " + type + " (the CUDA kernels read Q4_0, Q8_0, F16, F32)");
        }
        if (cols % type.blockSize() != 0 || (type == GgmlType.F16 && cols % 8 != 0)
                || (type.isQuantized() && cols % 32 != 0)) {
            throw new IllegalArgumentException("matrix of " + rows + " x " + cols + " " + type
                    + ": rows must hold whole blocks (and a multiple of 8 elements for F16)");
        }
        long expected = type.bytesFor((long) rows * cols);
        long given = parts.stream().mapToLong(MemorySegment::byteSize).sum();
        if (given != expected) {
            throw new IllegalArgumentException("matrix of " + rows + " x " + cols + " " + type + " takes " + expected
                    + " bytes, got " + given);
        }
        if (type == GgmlType.F16 || type == GgmlType.F32) {
            CUdeviceptr p = cuda.alloc(expected);
            copyParts(cuda, parts, p);
            return new GpuMatrix(type, rows, cols, p, null, expected);
        }
        long blocks = (long) rows * (cols / 32);
        int quantBytes = type == GgmlType.Q4_0 ? 16 : 32;
        CUdeviceptr q = cuda.alloc(blocks * quantBytes);
        CUdeviceptr d = cuda.alloc(blocks * 2);
        boolean ownStaging = staging == null;
        CUdeviceptr stage = ownStaging ? cuda.alloc(expected) : staging;
        try {
            copyParts(cuda, parts, stage);
            int threads = 256;
            long grid = (blocks + threads - 1) / threads;
            if (grid > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("matrix too large: " + blocks + " blocks");
            }
            cuda.launch(type == GgmlType.Q4_0 ? "repack_q4_0" : "repack_q8_0", (int) grid, 1, threads, 0,
                    stage, q, d, blocks);
            cuda.checkErrors("repacking a " + rows + " x " + cols + " " + type + " matrix");
        } finally {
            if (ownStaging) {
                cuda.free(stage, expected);
            }
        }
        return new GpuMatrix(type, rows, cols, q, d, blocks * quantBytes + blocks * 2);
    }

    private static void copyParts(CudaContext cuda, java.util.List<MemorySegment> parts, CUdeviceptr dst) {
        long off = 0;
        for (MemorySegment part : parts) {
            cuda.upload(part, dst.withByteOffset(off));
            off += part.byteSize();
        }
    }

    /** Whether a GEMV with this matrix reads quantized activations ({@link QuantizedVector}) or floats. */
    public boolean readsQuantizedActivations() {
        return type == GgmlType.Q4_0 || type == GgmlType.Q8_0;
    }

    public void free(CudaContext cuda) {
        if (scales != null) {
            cuda.free(quants, (long) rows * (cols / 32) * (type == GgmlType.Q4_0 ? 16 : 32));
            cuda.free(scales, (long) rows * (cols / 32) * 2);
        } else {
            cuda.free(quants, bytes);
        }
    }
}
