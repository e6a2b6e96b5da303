package aether.scheduler.compile;

import aether.runtime.ir.Shape;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Reads an f32 operand of shape {@code src} as if broadcast to {@code out}: {@link #load} fills a block of consecutive
 * output positions. A same-size operand is a bulk copy, a one-element operand a fill; anything else walks broadcast
 * strides with an odometer. All state is preallocated: a load allocates nothing.
 */
final class Gather {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;

    private final MemorySegment src;
    private final int[] dims;
    private final long[] strides;
    private final int[] idx;
    private final boolean sameSize;
    private final boolean single;

    Gather(MemorySegment src, Shape srcShape, Shape out) {
        if (!srcShape.broadcastsTo(out)) {
            throw new IllegalArgumentException("gather: " + srcShape + " does not broadcast to " + out);
        }
        this.src = src;
        this.dims = out.dims();
        this.idx = new int[dims.length];
        this.sameSize = srcShape.size() == out.size();
        this.single = srcShape.size() == 1;
        int offset = dims.length - srcShape.rank();
        long[] s = srcShape.strides();
        this.strides = new long[dims.length];
        for (int d = offset; d < dims.length; d++) {
            strides[d] = srcShape.dim(d - offset) == 1 ? 0 : s[d - offset];
        }
    }

    /** {@code dst[0..len)} = the operand at output positions {@code start..start+len)}. */
    void load(long start, int len, float[] dst) {
        if (len == 0) {
            return;
        }
        if (sameSize) {
            MemorySegment.copy(src, F32, start * Float.BYTES, dst, 0, len);
            return;
        }
        if (single) {
            Arrays.fill(dst, 0, len, src.get(F32, 0));
            return;
        }
        long rem = start;
        long off = 0;
        for (int d = dims.length - 1; d >= 0; d--) {
            idx[d] = (int) (rem % dims[d]);
            rem /= dims[d];
            off += idx[d] * strides[d];
        }
        // Runs along the innermost dimension: a bulk copy when the operand is contiguous there, a fill when it is
        // broadcast there; then one odometer carry per run instead of per element.
        int last = dims.length - 1;
        long innerStride = strides[last];
        int i = 0;
        while (i < len) {
            int run = Math.min(len - i, dims[last] - idx[last]);
            if (innerStride == 1) {
                MemorySegment.copy(src, F32, off * Float.BYTES, dst, i, run);
            } else if (innerStride == 0) {
                Arrays.fill(dst, i, i + run, src.getAtIndex(F32, off));
            } else {
                for (int j = 0; j < run; j++) {
                    dst[i + j] = src.getAtIndex(F32, off + j * innerStride);
                }
            }
            i += run;
            off += run * innerStride;
            idx[last] += run;
            if (idx[last] == dims[last]) {
                off -= innerStride * dims[last];
                idx[last] = 0;
                for (int d = last - 1; d >= 0; d--) {
                    off += strides[d];
                    if (++idx[d] < dims[d]) {
                        break;
                    }
                    off -= strides[d] * dims[d];
                    idx[d] = 0;
                }
            }
        }
    }
}
