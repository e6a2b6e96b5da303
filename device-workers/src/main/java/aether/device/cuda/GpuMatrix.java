package aether.device.cuda;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;
import jcuda.driver.CUdeviceptr;

/**
 * A weight matrix in device memory: {@code rows} output features of {@code cols} elements each, in the layout the
 * GEMV kernels read. Q4_0 and Q8_0 are repacked at upload from the GGUF blocks into their quants ({@link #quants()})
 * and f16 scales ({@link #scales()}) — the same numbers, split so each block's quants are aligned 16-byte loads; F16,
 * BF16 and F32 stay as stored ({@link #scales()} is null). Q4_K and Q6_K are repacked into one allocation per matrix:
 * 32-element sub-blocks of 16 quant bytes packed like Q4_0's ({@link #quants()}), then the high bits, scales and
 * super-block scales ({@link #scales()} points there, inside the same allocation; layout in {@code kquants.cuh}).
 */
public record GpuMatrix(GgmlType type, int rows, int cols, CUdeviceptr quants, CUdeviceptr scales, long bytes,
        java.util.List<GpuMatrix> parts) {

    public GpuMatrix(GgmlType type, int rows, int cols, CUdeviceptr quants, CUdeviceptr scales, long bytes) {
        this(type, rows, cols, quants, scales, bytes, java.util.List.of());
    }

    /**
     * A stacked matrix whose parts (rows one after another, same columns) have different types, e.g. a Q4_K_M
     * file's Q4_K attn_q/attn_k with a Q6_K attn_v: the kernels run one launch per part, each writing its rows of the
     * output. {@link #type()} is the first part's; {@link #quants()} and {@link #scales()} are null.
     */
    public static GpuMatrix stacked(java.util.List<GpuMatrix> parts) {
        if (parts.size() < 2) {
            throw new IllegalArgumentException("a stacked matrix of " + parts.size() + " parts (expected 2+)");
        }
        int cols = parts.getFirst().cols();
        boolean quantized = parts.getFirst().readsQuantizedActivations();
        int rows = 0;
        long bytes = 0;
        for (GpuMatrix m : parts) {
            if (m.cols() != cols || m.readsQuantizedActivations() != quantized || m.isStacked()) {
                throw new IllegalArgumentException("stacking a " + m.type() + " " + m.rows() + " x " + m.cols()
                        + " matrix onto " + parts.getFirst().type() + " rows of " + cols + " (expected the same "
                        + "columns and all parts quantized or all float)");
            }
            rows += m.rows();
            bytes += m.bytes();
        }
        return new GpuMatrix(parts.getFirst().type(), rows, cols, null, null, bytes, java.util.List.copyOf(parts));
    }

    /** Whether this is a {@link #stacked} matrix of parts. */
    public boolean isStacked() {
        return !parts.isEmpty();
    }

    /** The types this increment's kernels read as matrices (GEMV) and embedding tables (row lookup). */
    public static boolean supports(GgmlType type) {
        return type == GgmlType.Q4_0 || type == GgmlType.Q8_0 || isHalf(type) || type == GgmlType.F32
                || isKQuant(type);
    }

    /**
     * F16 and BF16: 16-bit floats kept as stored and read 8 to a 16-byte load, against float activations (the kernels
     * of the two differ only in how they widen an element: {@code widen8} in aether_kernels.cu).
     */
    public static boolean isHalf(GgmlType type) {
        return type == GgmlType.F16 || type == GgmlType.BF16;
    }

    /** Q4_K and Q6_K: repacked into one allocation of quants, then the rest ({@link #scales()}). */
    public static boolean isKQuant(GgmlType type) {
        return type == GgmlType.Q4_K || type == GgmlType.Q6_K;
    }

    /** Whether upload repacks this type on the device (through a staging buffer of the raw GGUF bytes). */
    public static boolean repacked(GgmlType type) {
        return type == GgmlType.Q4_0 || type == GgmlType.Q8_0 || isKQuant(type);
    }

    /** Bytes of the repacked K-quant matrix's quant section (its other sections follow; see kquants.cuh). */
    static long kQuantLoBytes(int rows, int cols) {
        return (long) rows * (cols / 32) * 16;
    }

    /** Bytes of a repacked K-quant matrix: Q4_K 18 per 32 + 4 per 256, Q6_K 26 per 32 + 2 per 256. */
    static long kQuantBytes(GgmlType type, int rows, int cols) {
        long sub = (long) rows * (cols / 32), sup = (long) rows * (cols / 256);
        return type == GgmlType.Q4_K ? sub * 18 + sup * 4 : sub * 26 + sup * 2;
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
            throw new IllegalArgumentException("matrix type " + type
                    + " (the CUDA kernels read Q4_0, Q8_0, Q4_K, Q6_K, F16, BF16, F32)");
        }
        if (cols % type.blockSize() != 0 || (isHalf(type) && cols % 8 != 0)
                || (type.isQuantized() && cols % 32 != 0)) {
            throw new IllegalArgumentException("matrix of " + rows + " x " + cols + " " + type
                    + ": rows must hold whole blocks (and a multiple of 8 elements for F16 and BF16)");
        }
        long expected = type.bytesFor((long) rows * cols);
        long given = parts.stream().mapToLong(MemorySegment::byteSize).sum();
        if (given != expected) {
            throw new IllegalArgumentException("matrix of " + rows + " x " + cols + " " + type + " takes " + expected
                    + " bytes, got " + given);
        }
        if (isHalf(type) || type == GgmlType.F32) {
            CUdeviceptr p = cuda.alloc(expected);
            copyParts(cuda, parts, p);
            return new GpuMatrix(type, rows, cols, p, null, expected);
        }
        if (isKQuant(type)) {
            return uploadKQuant(cuda, type, rows, cols, parts, staging, expected);
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

    private static GpuMatrix uploadKQuant(CudaContext cuda, GgmlType type, int rows, int cols,
            java.util.List<MemorySegment> parts, CUdeviceptr staging, long expected) {
        long bytes = kQuantBytes(type, rows, cols);
        long sub = (long) rows * (cols / 32);
        CUdeviceptr p = cuda.alloc(bytes);
        boolean ownStaging = staging == null;
        CUdeviceptr stage = ownStaging ? cuda.alloc(expected) : staging;
        try {
            copyParts(cuda, parts, stage);
            CUdeviceptr rest = p.withByteOffset(kQuantLoBytes(rows, cols));
            int threads = 256;
            long grid = (sub + threads - 1) / threads;
            if (grid > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("matrix too large: " + sub + " sub-blocks");
            }
            if (type == GgmlType.Q4_K) {
                cuda.launch("repack_q4_k", (int) grid, 1, threads, 0, stage, p, rest, rest.withByteOffset(sub * 2), sub);
            } else {
                cuda.launch("repack_q6_k", (int) grid, 1, threads, 0, stage, p, rest, rest.withByteOffset(sub * 8),
                        rest.withByteOffset(sub * 10), sub);
            }
            cuda.checkErrors("repacking a " + rows + " x " + cols + " " + type + " matrix");
        } catch (RuntimeException e) {
            cuda.free(p, bytes);
            throw e;
        } finally {
            if (ownStaging) {
                cuda.free(stage, expected);
            }
        }
        return new GpuMatrix(type, rows, cols, p, p.withByteOffset(kQuantLoBytes(rows, cols)), bytes);
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
        if (isStacked()) {
            return parts.getFirst().readsQuantizedActivations();
        }
        return type == GgmlType.Q4_0 || type == GgmlType.Q8_0 || isKQuant(type);
    }

    public void free(CudaContext cuda) {
        if (isStacked()) {
            parts.forEach(m -> m.free(cuda));
        } else if (isKQuant(type)) {
            cuda.free(quants, bytes);  // scales is a view into the same allocation
        } else if (scales != null) {
            cuda.free(quants, (long) rows * (cols / 32) * (type == GgmlType.Q4_0 ? 16 : 32));
            cuda.free(scales, (long) rows * (cols / 32) * 2);
        } else {
            cuda.free(quants, bytes);
        }
    }
}
