package aether.scheduler.compile;

import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The kernels of a {@link CompiledGraph}, one class per kind of step. Each is built once with its segments and scratch
 * arrays and then run any number of times without allocating. Arithmetic follows the reference executor's order of
 * operations and rounds each op's result to f32 once, so results are bit-identical to it.
 */
final class Steps {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;

    private Steps() {}

    /** One dispatch. */
    interface Step {
        void run();
    }

    /** Stores {@code block} as positions {@code start..start+len)} of {@code out}. */
    static void store(float[] block, long start, int len, MemorySegment out) {
        MemorySegment.copy(block, 0, out, F32, start * Float.BYTES, len);
    }

    /** An elementwise chain (fused or a single op) over its root's shape, in blocks. */
    static final class Elementwise implements Step {
        private final ElementwiseProgram program;
        private final MemorySegment out;
        private final long size;
        private final int block;

        Elementwise(ElementwiseProgram program, MemorySegment out, long size, int block) {
            this.program = program;
            this.out = out;
            this.size = size;
            this.block = block;
        }

        @Override
        public void run() {
            for (long start = 0; start < size; start += block) {
                int len = (int) Math.min(block, size - start);
                store(program.evaluate(start, len), start, len, out);
            }
        }
    }

    /** Batched matmul, each output row rounded to f32 and then passed through the epilogue (if any) before it is stored. */
    static final class MatMul implements Step {
        private final MemorySegment a;
        private final MemorySegment b;
        private final MemorySegment out;
        private final boolean transposeB;
        private final int m;
        private final int k;
        private final int n;
        private final long[] aOffsets;
        private final long[] bOffsets;
        private final float[] aRow;
        private final double[] acc;
        private final float[] row;
        private final ElementwiseProgram epilogue;

        MatMul(MemorySegment a, Shape as, MemorySegment b, Shape bs, boolean transposeB, MemorySegment out, Shape os,
                ElementwiseProgram epilogue) {
            this.a = a;
            this.b = b;
            this.out = out;
            this.transposeB = transposeB;
            this.m = as.dim(-2);
            this.k = as.dim(-1);
            this.n = os.dim(-1);
            long[][] offs = batchOffsets(as, bs, os);
            this.aOffsets = offs[0];
            this.bOffsets = offs[1];
            this.aRow = new float[k];
            this.acc = new double[n];
            this.epilogue = epilogue;
            this.row = epilogue != null ? epilogue.presetBlock() : new float[n];
        }

        @Override
        public void run() {
            for (int batch = 0; batch < aOffsets.length; batch++) {
                long aBase = aOffsets[batch] * m * k;
                long bBase = bOffsets[batch] * k * n;
                long oBase = (long) batch * m * n;
                for (int i = 0; i < m; i++) {
                    MemorySegment.copy(a, F32, (aBase + (long) i * k) * Float.BYTES, aRow, 0, k);
                    if (transposeB) {
                        // Four output columns at a time: four independent sums, each still in p order.
                        int j = 0;
                        for (; j + 4 <= n; j += 4) {
                            long r0 = bBase + (long) j * k;
                            long r1 = r0 + k;
                            long r2 = r1 + k;
                            long r3 = r2 + k;
                            double s0 = 0;
                            double s1 = 0;
                            double s2 = 0;
                            double s3 = 0;
                            for (int p = 0; p < k; p++) {
                                double av = aRow[p];
                                s0 += av * b.getAtIndex(F32, r0 + p);
                                s1 += av * b.getAtIndex(F32, r1 + p);
                                s2 += av * b.getAtIndex(F32, r2 + p);
                                s3 += av * b.getAtIndex(F32, r3 + p);
                            }
                            acc[j] = s0;
                            acc[j + 1] = s1;
                            acc[j + 2] = s2;
                            acc[j + 3] = s3;
                        }
                        for (; j < n; j++) {
                            long bRow = bBase + (long) j * k;
                            double s = 0;
                            for (int p = 0; p < k; p++) {
                                s += (double) aRow[p] * b.getAtIndex(F32, bRow + p);
                            }
                            acc[j] = s;
                        }
                    } else {
                        java.util.Arrays.fill(acc, 0);
                        for (int p = 0; p < k; p++) {
                            double av = aRow[p];
                            long bRow = bBase + (long) p * n;
                            for (int j = 0; j < n; j++) {
                                acc[j] += av * b.getAtIndex(F32, bRow + j);
                            }
                        }
                    }
                    for (int j = 0; j < n; j++) {
                        row[j] = (float) acc[j];
                    }
                    long start = oBase + (long) i * n;
                    store(epilogue != null ? epilogue.evaluate(start, n) : row, start, n, out);
                }
            }
        }

        /** Offsets (in matrices) of each output batch matrix in a and b, following broadcast batch dimensions. */
        private static long[][] batchOffsets(Shape as, Shape bs, Shape out) {
            Shape batch = out.sub(0, out.rank() - 2);
            int nb = batch.sizeAsInt();
            long[][] offs = new long[2][nb];
            Shape[] operands = {as.sub(0, as.rank() - 2), bs.sub(0, bs.rank() - 2)};
            int[] dims = batch.dims();
            for (int o = 0; o < 2; o++) {
                Shape s = operands[o];
                long[] strides = s.strides();
                int offset = dims.length - s.rank();
                for (int flat = 0; flat < nb; flat++) {
                    long rem = flat;
                    long at = 0;
                    for (int d = dims.length - 1; d >= 0; d--) {
                        int idx = (int) (rem % dims[d]);
                        rem /= dims[d];
                        if (d >= offset && s.dim(d - offset) != 1) {
                            at += idx * strides[d - offset];
                        }
                    }
                    offs[o][flat] = at;
                }
            }
            return offs;
        }
    }

    /**
     * a[..., m, k] times a 2-D weight read one row at a time through {@link aether.scheduler.exec.WeightRows} (f16, bf16
     * or a quantized block type, never expanded), in the reference executor's order: weight rows outer, each read once
     * per run, sums in double. Output rows are then rounded, passed through the epilogue and stored.
     */
    static final class MatMulRows implements Step {
        private final MemorySegment a;
        private final aether.scheduler.exec.WeightRows w;
        private final boolean transposeB;
        private final MemorySegment out;
        private final int k;
        private final int n;
        private final int rowsA;
        private final float[] aAll;
        private final float[] weightRow;
        private final double[] acc;
        private final float[] row;
        private final ElementwiseProgram epilogue;

        MatMulRows(MemorySegment a, Shape as, aether.scheduler.exec.WeightRows w, boolean transposeB, MemorySegment out,
                Shape os, ElementwiseProgram epilogue) {
            this.a = a;
            this.w = w;
            this.transposeB = transposeB;
            this.out = out;
            this.k = as.dim(-1);
            this.n = os.dim(-1);
            this.rowsA = k == 0 ? 0 : as.sizeAsInt() / k;
            this.aAll = new float[as.sizeAsInt()];
            this.weightRow = new float[w.cols()];
            this.acc = new double[Math.multiplyExact(rowsA, n)];
            this.epilogue = epilogue;
            this.row = epilogue != null ? epilogue.presetBlock() : new float[n];
        }

        @Override
        public void run() {
            MemorySegment.copy(a, F32, 0, aAll, 0, aAll.length);
            java.util.Arrays.fill(acc, 0);
            if (k > 0) {
                for (int wr = 0; wr < w.rows(); wr++) {
                    w.row(wr, weightRow);
                    for (int i = 0; i < rowsA; i++) {
                        int aBase = i * k;
                        if (transposeB) {
                            double s = 0;
                            for (int p = 0; p < k; p++) {
                                s += aAll[aBase + p] * (double) weightRow[p];
                            }
                            acc[i * n + wr] = s;
                        } else {
                            double av = aAll[aBase + wr];
                            int rBase = i * n;
                            for (int j = 0; j < n; j++) {
                                acc[rBase + j] += av * weightRow[j];
                            }
                        }
                    }
                }
            }
            for (int i = 0; i < rowsA; i++) {
                for (int j = 0; j < n; j++) {
                    row[j] = (float) acc[i * n + j];
                }
                long start = (long) i * n;
                store(epilogue != null ? epilogue.evaluate(start, n) : row, start, n, out);
            }
        }
    }

    /** Softmax, rms_norm or layer_norm over the last axis, with an optional prologue (its input) and epilogue. */
    static final class RowOp implements Step {
        private final Op op;
        private final ElementwiseProgram prologue;
        private final Gather input;
        private final Gather mask;
        private final ElementwiseProgram epilogue;
        private final MemorySegment out;
        private final int cols;
        private final long rows;
        private final float[] x;
        private final float[] maskRow;
        private final double[] z;
        private final float[] row;

        RowOp(Op op, ElementwiseProgram prologue, Gather input, Gather mask, ElementwiseProgram epilogue,
                MemorySegment out, Shape shape) {
            this.op = op;
            this.prologue = prologue;
            this.input = input;
            this.mask = mask;
            this.epilogue = epilogue;
            this.out = out;
            this.cols = shape.dim(-1);
            this.rows = cols == 0 ? 0 : shape.size() / cols;
            this.x = new float[cols];
            this.maskRow = new float[mask != null ? cols : 0];
            this.z = new double[cols];
            this.row = epilogue != null ? epilogue.presetBlock() : new float[cols];
        }

        @Override
        public void run() {
            for (long r = 0; r < rows; r++) {
                long start = r * cols;
                float[] xs;
                if (prologue != null) {
                    xs = prologue.evaluate(start, cols);
                } else {
                    input.load(start, cols, x);
                    xs = x;
                }
                switch (op) {
                    case Op.Softmax s -> softmax(xs, s.scale(), s.softCap(), start);
                    case Op.RmsNorm n -> rmsNorm(xs, n.eps());
                    case Op.LayerNorm n -> layerNorm(xs, n.eps());
                    default -> throw new IllegalStateException("not a row op: " + op);
                }
                store(epilogue != null ? epilogue.evaluate(start, cols) : row, start, cols, out);
            }
        }

        // Kernels.softmax, row by row.
        private void softmax(float[] xs, double scale, double softCap, long start) {
            if (mask != null) {
                mask.load(start, cols, maskRow);
            }
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < cols; j++) {
                double v = xs[j] * scale;
                if (softCap > 0) {
                    v = softCap * Math.tanh(v / softCap);
                }
                if (mask != null) {
                    v += maskRow[j];
                }
                z[j] = v;
                max = Math.max(max, v);
            }
            if (max == Double.NEGATIVE_INFINITY) {
                java.util.Arrays.fill(row, 0, cols, 0f);
                return;
            }
            double sum = 0;
            for (int j = 0; j < cols; j++) {
                double e = Math.exp(z[j] - max);
                z[j] = e;
                sum += e;
            }
            for (int j = 0; j < cols; j++) {
                row[j] = (float) (z[j] / sum);
            }
        }

        private void rmsNorm(float[] xs, double eps) {
            double ss = 0;
            for (int j = 0; j < cols; j++) {
                ss += (double) xs[j] * xs[j];
            }
            double s = 1 / Math.sqrt(ss / cols + eps);
            for (int j = 0; j < cols; j++) {
                row[j] = (float) (xs[j] * s);
            }
        }

        private void layerNorm(float[] xs, double eps) {
            double mean = 0;
            for (int j = 0; j < cols; j++) {
                mean += xs[j];
            }
            mean /= cols;
            double var = 0;
            for (int j = 0; j < cols; j++) {
                double d = xs[j] - mean;
                var += d * d;
            }
            double s = 1 / Math.sqrt(var / cols + eps);
            for (int j = 0; j < cols; j++) {
                row[j] = (float) ((xs[j] - mean) * s);
            }
        }
    }

    /** Reordering copies: permute, expand, slice, pad, concat (as one gather per output position). */
    static final class Permute implements Step {
        private final MemorySegment src;
        private final MemorySegment out;
        private final int[] dims;
        private final long[] strides;
        private final int[] idx;
        private final long size;

        Permute(MemorySegment src, Shape srcShape, List<Integer> axes, MemorySegment out) {
            this.src = src;
            this.out = out;
            int rank = srcShape.rank();
            long[] s = srcShape.strides();
            this.dims = new int[rank];
            this.strides = new long[rank];
            for (int i = 0; i < rank; i++) {
                dims[i] = srcShape.dim(axes.get(i));
                strides[i] = s[axes.get(i)];
            }
            this.idx = new int[rank];
            this.size = srcShape.size();
        }

        @Override
        public void run() {
            java.util.Arrays.fill(idx, 0);
            long ix = 0;
            for (long o = 0; o < size; o++) {
                out.setAtIndex(F32, o, src.getAtIndex(F32, ix));
                for (int d = dims.length - 1; d >= 0; d--) {
                    ix += strides[d];
                    if (++idx[d] < dims[d]) {
                        break;
                    }
                    ix -= strides[d] * dims[d];
                    idx[d] = 0;
                }
            }
        }
    }

    /** Broadcast copy. */
    static final class Expand implements Step {
        private final Gather gather;
        private final MemorySegment out;
        private final long size;
        private final float[] block;

        Expand(Gather gather, MemorySegment out, long size, int blockSize) {
            this.gather = gather;
            this.out = out;
            this.size = size;
            this.block = new float[blockSize];
        }

        @Override
        public void run() {
            for (long start = 0; start < size; start += block.length) {
                int len = (int) Math.min(block.length, size - start);
                gather.load(start, len, block);
                store(block, start, len, out);
            }
        }
    }

    /**
     * Copies chunks: {@code outer} times, {@code chunk} elements from {@code src} at {@code srcStart + o * srcRow} to
     * {@code out} at {@code dstStart + o * dstRow}. Slice, pad and each concat operand are one of these; a pad first
     * zero-fills.
     */
    static final class Chunks implements Step {
        private final MemorySegment src;
        private final MemorySegment out;
        private final long outer;
        private final long chunk;
        private final long srcStart;
        private final long srcRow;
        private final long dstStart;
        private final long dstRow;
        private final boolean zeroFirst;

        Chunks(MemorySegment src, MemorySegment out, long outer, long chunk, long srcStart, long srcRow, long dstStart,
                long dstRow, boolean zeroFirst) {
            this.src = src;
            this.out = out;
            this.outer = outer;
            this.chunk = chunk;
            this.srcStart = srcStart;
            this.srcRow = srcRow;
            this.dstStart = dstStart;
            this.dstRow = dstRow;
            this.zeroFirst = zeroFirst;
        }

        @Override
        public void run() {
            if (zeroFirst) {
                out.fill((byte) 0);
            }
            for (long o = 0; o < outer; o++) {
                MemorySegment.copy(src, (srcStart + o * srcRow) * Float.BYTES, out, (dstStart + o * dstRow) * Float.BYTES,
                        chunk * Float.BYTES);
            }
        }
    }

    /** sum / mean / max along one axis (Kernels.reduce order). */
    static final class Reduce implements Step {
        private final Op.ReduceFn fn;
        private final MemorySegment src;
        private final MemorySegment out;
        private final int len;
        private final long inner;
        private final long outer;

        Reduce(Op.ReduceFn fn, MemorySegment src, Shape xs, int axis, MemorySegment out) {
            this.fn = fn;
            this.src = src;
            this.out = out;
            this.len = xs.dim(axis);
            this.inner = xs.sub(axis + 1, xs.rank()).size();
            this.outer = xs.sub(0, axis).size();
        }

        @Override
        public void run() {
            for (long o = 0; o < outer; o++) {
                for (long i = 0; i < inner; i++) {
                    long base = o * len * inner + i;
                    double acc = fn == Op.ReduceFn.MAX ? Double.NEGATIVE_INFINITY : 0;
                    for (int j = 0; j < len; j++) {
                        double v = src.getAtIndex(F32, base + j * inner);
                        acc = fn == Op.ReduceFn.MAX ? Math.max(acc, v) : acc + v;
                    }
                    out.setAtIndex(F32, o * inner + i, (float) (fn == Op.ReduceFn.MEAN ? acc / len : acc));
                }
            }
        }
    }
}
