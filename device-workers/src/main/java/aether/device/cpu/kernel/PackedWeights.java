package aether.device.cpu.kernel;

import aether.runtime.tensor.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A weight matrix prepared once (at model load) for {@link Matmul#multiply(PackedWeights, MemorySegment, int,
 * MemorySegment)}: {@code outFeatures} rows of {@code inFeatures} elements of {@link #type()}. It always keeps the
 * ggml block layout it was made from ({@link #source()}, usually a slice of the mapped GGUF, not copied), which the
 * prefill GEMM reads; where a repacked layout measured faster for decode, it also holds that copy
 * ({@link #layout()}), and with the vector module the GEMM reads that copy too, so the source is then not read again
 * ({@link #readsSource()}: a model can let the mapped file's pages go and keep one copy of the weights resident):
 *
 * <ul>
 *   <li>{@link Layout#Q4_0_PLANAR}: Q4_0 rows re-laid for the int16 decode kernel. Per row, {@code pb} = the block
 *       count rounded up to 8: first the {@code pb} f16 scales (the blocks' {@code d}, 0 for padding), then
 *       {@code pb / 2} pairs of blocks of 32 bytes each, read as 16 little-endian 16-bit lanes: lane k holds, from
 *       bit 0, the nibbles of elements k and k+16 of the pair's first block and then of its second (padding blocks
 *       are 0). One 32-byte load then gives four vectors of 16 lanes with one shift and one mask each, already in
 *       element order, instead of a misaligned 16-byte load and a widening per block; the scales, contiguous, are
 *       converted 8 at a time instead of one scalar f16 conversion per block. Same 18 bytes per block as ggml, so
 *       decode reads the same number of bytes. Blocks with an Inf or NaN scale keep the ggml layout (the vector
 *       scale conversion is exact only for finite halves), so such a matrix is left {@link Layout#GGUF}.</li>
 *   <li>{@link Layout#GGUF}: no copy; decode reads {@link #source()} as {@link Matmul#multiply(GgmlType,
 *       MemorySegment, int, int, MemorySegment, int, MemorySegment)} does.</li>
 * </ul>
 *
 * <p>Immutable after creation and safe to share between threads and {@link Matmul} instances. The packed copy lives
 * in the arena passed to {@link #prepare}; it must outlive every multiply that reads it, and the segments must be
 * readable from the kernel pool's threads (a shared, global or automatic arena, not a confined one).
 */
public final class PackedWeights {
    /** How decode reads the weights. */
    public enum Layout {
        /** The ggml block layout, read in place. */
        GGUF,
        /** Q4_0 re-laid for the int16 decode kernel (see the class comment). */
        Q4_0_PLANAR
    }

    private final GgmlType type;
    private final MemorySegment source;
    private final int outFeatures;
    private final int inFeatures;
    private final Layout layout;
    private final MemorySegment packed;
    private final int paddedBlocks;

    private PackedWeights(GgmlType type, MemorySegment source, int outFeatures, int inFeatures, Layout layout,
                          MemorySegment packed, int paddedBlocks) {
        this.type = type;
        this.source = source;
        this.outFeatures = outFeatures;
        this.inFeatures = inFeatures;
        this.layout = layout;
        this.packed = packed;
        this.paddedBlocks = paddedBlocks;
    }

    /**
     * Wraps ggml-layout weights without copying (layout {@link Layout#GGUF}); the same checks as {@link Matmul}'s
     * multiply.
     *
     * @throws IllegalArgumentException on an unsupported type, a partial block or a segment smaller than the shape
     */
    public static PackedWeights wrap(GgmlType type, MemorySegment weights, int outFeatures, int inFeatures) {
        check(type, weights, outFeatures, inFeatures);
        return new PackedWeights(type, weights, outFeatures, inFeatures, Layout.GGUF, MemorySegment.NULL, 0);
    }

    /**
     * Prepares weights for decode: repacks the types with a faster layout (Q4_0, see {@link Layout#Q4_0_PLANAR}) into
     * {@code arena}, and wraps the others. Runs on the calling thread, O(weights), about memory speed with the vector
     * module; call it once per matrix at load.
     *
     * @param arena where the packed copy is allocated (same byte count as the source plus padding to 8 blocks per row)
     * @throws IllegalArgumentException on an unsupported type, a partial block or a segment smaller than the shape
     */
    public static PackedWeights prepare(GgmlType type, MemorySegment weights, int outFeatures, int inFeatures, Arena arena) {
        check(type, weights, outFeatures, inFeatures);
        if (type != GgmlType.Q4_0 || outFeatures == 0 || inFeatures == 0 || hasNonFiniteScale(weights, outFeatures, inFeatures)) {
            return new PackedWeights(type, weights, outFeatures, inFeatures, Layout.GGUF, MemorySegment.NULL, 0);
        }
        int blocks = inFeatures / 32;
        int pb = (blocks + 7) & ~7;
        long rowBytes = q4PlanarRowBytes(pb);
        MemorySegment packed = arena.allocate(Math.multiplyExact(rowBytes, (long) outFeatures), 64);
        long srcRow = GgmlType.Q4_0.bytesFor(inFeatures);
        boolean vector = VectorSupport.available();   // the layout is the same either way; vectors only pack faster
        // rows are independent: pack them on the common pool's threads too (model load waits for all of them)
        java.util.stream.IntStream.range(0, outFeatures).parallel()
                .forEach(r -> packRow(weights, r * srcRow, packed, r * rowBytes, blocks, pb, vector));
        return new PackedWeights(type, weights, outFeatures, inFeatures, Layout.Q4_0_PLANAR, packed, pb);
    }

    /** One row of {@code blocks} ggml Q4_0 blocks at {@code src} into the planar row at {@code dst}. */
    private static void packRow(MemorySegment weights, long src, MemorySegment packed, long dst, int blocks, int pb,
                                boolean vector) {
        for (int b = 0; b < blocks; b++) {
            packed.set(BlockLayouts.I16, dst + 2L * b, weights.get(BlockLayouts.I16, src + (long) b * BlockLayouts.Q4_0_BYTES));
        }
        long qs = dst + 2L * pb;
        int first = vector ? 2 * Q4_0Kernels.packPlanarPairs(weights, src, blocks, packed, qs) : 0;
        for (int b = first; b < blocks; b += 2) {
            long q0 = src + (long) b * BlockLayouts.Q4_0_BYTES + BlockLayouts.Q4_0_QS;
            long q1 = q0 + BlockLayouts.Q4_0_BYTES;
            for (int k = 0; k < 16; k++) {
                int lo = weights.get(ValueLayout.JAVA_BYTE, q0 + k) & 0xFF;
                int hi = b + 1 < blocks ? weights.get(ValueLayout.JAVA_BYTE, q1 + k) & 0xFF : 0;
                packed.set(BlockLayouts.I16, qs + 16L * b + 2L * k, (short) (lo | hi << 8));
            }
        }
    }

    /**
     * Whether multiplies still read {@link #source()}: always for {@link Layout#GGUF}; for {@link
     * Layout#Q4_0_PLANAR} only without the vector module (the scalar paths read the ggml layout).
     */
    public boolean readsSource() {
        return layout == Layout.GGUF || !VectorSupport.available();
    }

    private static boolean hasNonFiniteScale(MemorySegment w, int rows, int cols) {
        long blocks = (long) rows * (cols / 32);
        for (long b = 0; b < blocks; b++) {
            if ((w.get(BlockLayouts.I16, b * BlockLayouts.Q4_0_BYTES) & 0x7C00) == 0x7C00) {
                return true;
            }
        }
        return false;
    }

    private static void check(GgmlType type, MemorySegment weights, int outFeatures, int inFeatures) {
        if (!Matmul.SUPPORTED.contains(type)) {
            throw new IllegalArgumentException("matmul: weight type %s is not supported (expected one of %s)".formatted(type, Matmul.SUPPORTED));
        }
        if (outFeatures < 0 || inFeatures < 0) {
            throw new IllegalArgumentException("matmul: negative weight shape out=%d in=%d".formatted(outFeatures, inFeatures));
        }
        long need = Math.multiplyExact(type.bytesFor(inFeatures), (long) outFeatures);
        if (weights.byteSize() < need) {
            throw new IllegalArgumentException("matmul: weights %s [%d x %d] needs %,d bytes, segment has %,d"
                    .formatted(type, outFeatures, inFeatures, need, weights.byteSize()));
        }
    }

    /** Bytes of one {@link Layout#Q4_0_PLANAR} row with {@code paddedBlocks} blocks: scales, then nibble pairs. */
    static long q4PlanarRowBytes(int paddedBlocks) {
        return 18L * paddedBlocks;
    }

    /** The element type of the weights. */
    public GgmlType type() {
        return type;
    }

    /** The ggml-layout weights this was made from (not copied). */
    public MemorySegment source() {
        return source;
    }

    /** Rows: output features. */
    public int outFeatures() {
        return outFeatures;
    }

    /** Elements per row: input features. */
    public int inFeatures() {
        return inFeatures;
    }

    /** The layout decode reads. */
    public Layout layout() {
        return layout;
    }

    /** Bytes of the repacked copy (0 for {@link Layout#GGUF}). */
    public long packedBytes() {
        return packed.byteSize();
    }

    /** Bytes of weights one decode GEMV reads, whatever the layout (for bandwidth figures). */
    public long decodeBytes() {
        return layout == Layout.GGUF ? type.bytesFor(inFeatures) * outFeatures : packed.byteSize();
    }

    MemorySegment packed() {
        return packed;
    }

    /** Blocks per row in the packed layout, rounded up to a multiple of 8. */
    int paddedBlocks() {
        return paddedBlocks;
    }
}
