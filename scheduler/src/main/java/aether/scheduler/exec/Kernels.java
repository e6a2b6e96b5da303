package aether.scheduler.exec;

import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import java.util.Arrays;
import java.util.List;

/** The reference executor's loops: correct and plain, accumulating in double. Row-major, NumPy-order shapes. */
final class Kernels {

    private static final double SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
    private static final double GELU_COEF_A = 0.044715;

    private Kernels() {}

    static double[] full(Shape out, double value) {
        double[] r = new double[out.sizeAsInt()];
        Arrays.fill(r, value);
        return r;
    }

    static double[] causalMask(int queries, int keys, int window) {
        double[] r = new double[Math.multiplyExact(queries, keys)];
        for (int i = 0; i < queries; i++) {
            int pos = i + keys - queries;
            for (int j = 0; j < keys; j++) {
                boolean visible = j <= pos && (window == 0 || pos - j < window);
                r[i * keys + j] = visible ? 0 : Double.NEGATIVE_INFINITY;
            }
        }
        return r;
    }

    static double[] unary(Op.UnaryFn fn, double[] x) {
        double[] r = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            r[i] = unary(fn, x[i]);
        }
        return r;
    }

    static double unary(Op.UnaryFn fn, double x) {
        return switch (fn) {
            case NEG -> -x;
            case ABS -> Math.abs(x);
            case EXP -> Math.exp(x);
            case LOG -> Math.log(x);
            case SQRT -> Math.sqrt(x);
            case RSQRT -> 1 / Math.sqrt(x);
            case TANH -> Math.tanh(x);
            case SIGMOID -> sigmoid(x);
            case RELU -> x > 0 ? x : 0;
            case GELU -> 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * x * (1 + GELU_COEF_A * x * x)));
            case SILU -> x * sigmoid(x);
            case SIGN -> Math.signum(x);
            case STEP -> x > 0 ? 1 : 0;
            case GELU_DERIV -> {
                double t = Math.tanh(SQRT_2_OVER_PI * x * (1 + GELU_COEF_A * x * x));
                yield 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_COEF_A * x * x);
            }
            case SILU_DERIV -> {
                double s = sigmoid(x);
                yield s * (1 + x * (1 - s));
            }
        };
    }

    private static double sigmoid(double x) {
        return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    }

    static double[] pow(double[] x, double p) {
        double[] r = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            r[i] = Math.pow(x[i], p);
        }
        return r;
    }

    static double[] clamp(double[] x, double lo, double hi) {
        double[] r = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            r[i] = Math.min(Math.max(x[i], lo), hi);
        }
        return r;
    }

    static double[] scale(double[] x, double f) {
        double[] r = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            r[i] = x[i] * f;
        }
        return r;
    }

    /** Strides of {@code in} seen through {@code out}'s dimensions: 0 where {@code in} is broadcast. */
    static long[] broadcastStrides(Shape in, Shape out) {
        int rank = out.rank();
        int offset = rank - in.rank();
        long[] inStrides = in.strides();
        long[] s = new long[rank];
        for (int d = offset; d < rank; d++) {
            s[d] = in.dim(d - offset) == 1 ? 0 : inStrides[d - offset];
        }
        return s;
    }

    static double[] binary(Op.BinaryFn fn, double[] a, Shape as, double[] b, Shape bs, Shape out) {
        int n = out.sizeAsInt();
        double[] r = new double[n];
        int rank = out.rank();
        int[] dims = out.dims();
        long[] sa = broadcastStrides(as, out);
        long[] sb = broadcastStrides(bs, out);
        int[] idx = new int[rank];
        long ia = 0;
        long ib = 0;
        for (int o = 0; o < n; o++) {
            double x = a[(int) ia];
            double y = b[(int) ib];
            r[o] = switch (fn) {
                case ADD -> x + y;
                case SUB -> x - y;
                case MUL -> x * y;
                case DIV -> x / y;
                case POW -> Math.pow(x, y);
                case EQ -> x == y ? 1 : 0;
            };
            for (int d = rank - 1; d >= 0; d--) {
                ia += sa[d];
                ib += sb[d];
                if (++idx[d] < dims[d]) {
                    break;
                }
                ia -= sa[d] * dims[d];
                ib -= sb[d] * dims[d];
                idx[d] = 0;
            }
        }
        return r;
    }

    static double[] expand(double[] x, Shape xs, Shape out) {
        int n = out.sizeAsInt();
        double[] r = new double[n];
        int rank = out.rank();
        int[] dims = out.dims();
        long[] sx = broadcastStrides(xs, out);
        int[] idx = new int[rank];
        long ix = 0;
        for (int o = 0; o < n; o++) {
            r[o] = x[(int) ix];
            for (int d = rank - 1; d >= 0; d--) {
                ix += sx[d];
                if (++idx[d] < dims[d]) {
                    break;
                }
                ix -= sx[d] * dims[d];
                idx[d] = 0;
            }
        }
        return r;
    }

    static double[] reduce(Op.ReduceFn fn, double[] x, Shape xs, int axis) {
        int len = xs.dim(axis);
        int inner = (int) xs.sub(axis + 1, xs.rank()).size();
        int outer = (int) xs.sub(0, axis).size();
        double[] r = new double[outer * inner];
        for (int o = 0; o < outer; o++) {
            for (int i = 0; i < inner; i++) {
                int base = o * len * inner + i;
                double acc = fn == Op.ReduceFn.MAX ? Double.NEGATIVE_INFINITY : 0;
                for (int j = 0; j < len; j++) {
                    double v = x[base + j * inner];
                    acc = fn == Op.ReduceFn.MAX ? Math.max(acc, v) : acc + v;
                }
                r[o * inner + i] = fn == Op.ReduceFn.MEAN ? acc / len : acc;
            }
        }
        return r;
    }

    static double[] argmax(double[] x, Shape xs, int axis) {
        int len = xs.dim(axis);
        int inner = (int) xs.sub(axis + 1, xs.rank()).size();
        int outer = (int) xs.sub(0, axis).size();
        double[] r = new double[outer * inner];
        for (int o = 0; o < outer; o++) {
            for (int i = 0; i < inner; i++) {
                int base = o * len * inner + i;
                int best = 0;
                for (int j = 1; j < len; j++) {
                    if (x[base + j * inner] > x[base + best * inner]) {
                        best = j;
                    }
                }
                r[o * inner + i] = best;
            }
        }
        return r;
    }

    /** Offsets of each output batch matrix in a and b (in matrices), following broadcast batch dimensions. */
    private static int[][] batchOffsets(Shape as, Shape bs, Shape out) {
        Shape batch = out.sub(0, out.rank() - 2);
        Shape ab = as.sub(0, as.rank() - 2);
        Shape bb = bs.sub(0, bs.rank() - 2);
        int nb = batch.sizeAsInt();
        long[] sa = broadcastStrides(ab, batch);
        long[] sb = broadcastStrides(bb, batch);
        int[] dims = batch.dims();
        int[][] offs = new int[2][nb];
        int[] idx = new int[dims.length];
        long ia = 0;
        long ib = 0;
        for (int o = 0; o < nb; o++) {
            offs[0][o] = (int) ia;
            offs[1][o] = (int) ib;
            for (int d = dims.length - 1; d >= 0; d--) {
                ia += sa[d];
                ib += sb[d];
                if (++idx[d] < dims[d]) {
                    break;
                }
                ia -= sa[d] * dims[d];
                ib -= sb[d] * dims[d];
                idx[d] = 0;
            }
        }
        return offs;
    }

    static double[] matmul(double[] a, Shape as, double[] b, Shape bs, boolean transposeB, Shape out) {
        int m = as.dim(-2);
        int k = as.dim(-1);
        int n = out.dim(-1);
        int[][] offs = batchOffsets(as, bs, out);
        double[] r = new double[out.sizeAsInt()];
        double[] acc = new double[n];
        for (int batch = 0; batch < offs[0].length; batch++) {
            int aBase = offs[0][batch] * m * k;
            int bBase = offs[1][batch] * k * n;
            int rBase = batch * m * n;
            for (int i = 0; i < m; i++) {
                Arrays.fill(acc, 0);
                for (int p = 0; p < k; p++) {
                    double av = a[aBase + i * k + p];
                    if (transposeB) {
                        for (int j = 0; j < n; j++) {
                            acc[j] += av * b[bBase + j * k + p];
                        }
                    } else {
                        int row = bBase + p * n;
                        for (int j = 0; j < n; j++) {
                            acc[j] += av * b[row + j];
                        }
                    }
                }
                System.arraycopy(acc, 0, r, rBase + i * n, n);
            }
        }
        return r;
    }

    /**
     * a[..., m, k] times a 2-D weight read row by row. transposeB: weight [n, k], out[i, r] = a[i] . row r. Otherwise
     * weight [k, n], out[i] = sum_r a[i, r] * row r. One scratch row; the weight is never expanded.
     */
    static double[] matmulRows(double[] a, Shape as, WeightRows w, boolean transposeB, Shape out) {
        int k = as.dim(-1);
        int rowsA = a.length / Math.max(k, 1);
        int n = out.dim(-1);
        double[] r = new double[out.sizeAsInt()];
        float[] row = new float[w.cols()];
        if (k == 0) {
            return r;
        }
        for (int wr = 0; wr < w.rows(); wr++) {
            w.row(wr, row);
            for (int i = 0; i < rowsA; i++) {
                int aBase = i * k;
                if (transposeB) {
                    double acc = 0;
                    for (int p = 0; p < k; p++) {
                        acc += a[aBase + p] * row[p];
                    }
                    r[i * n + wr] = acc;
                } else {
                    double av = a[aBase + wr];
                    int rBase = i * n;
                    for (int j = 0; j < n; j++) {
                        r[rBase + j] += av * row[j];
                    }
                }
            }
        }
        return r;
    }

    /** Row-wise softmax of cap(x * scale) + mask; a row with no finite entry comes out as zeros. */
    static double[] softmax(double[] x, Shape xs, double[] mask, double scale, double softCap) {
        int cols = xs.dim(-1);
        int rows = cols == 0 ? 0 : x.length / cols;
        double[] r = new double[x.length];
        for (int row = 0; row < rows; row++) {
            int base = row * cols;
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < cols; j++) {
                double z = x[base + j] * scale;
                if (softCap > 0) {
                    z = softCap * Math.tanh(z / softCap);
                }
                if (mask != null) {
                    z += mask[base + j];
                }
                r[base + j] = z;
                max = Math.max(max, z);
            }
            if (max == Double.NEGATIVE_INFINITY) {
                Arrays.fill(r, base, base + cols, 0);
                continue;
            }
            double sum = 0;
            for (int j = 0; j < cols; j++) {
                double e = Math.exp(r[base + j] - max);
                r[base + j] = e;
                sum += e;
            }
            for (int j = 0; j < cols; j++) {
                r[base + j] /= sum;
            }
        }
        return r;
    }

    static double[] rmsNorm(double[] x, int cols, double eps) {
        double[] r = new double[x.length];
        int rows = cols == 0 ? 0 : x.length / cols;
        for (int row = 0; row < rows; row++) {
            int base = row * cols;
            double ss = 0;
            for (int j = 0; j < cols; j++) {
                ss += x[base + j] * x[base + j];
            }
            double s = 1 / Math.sqrt(ss / cols + eps);
            for (int j = 0; j < cols; j++) {
                r[base + j] = x[base + j] * s;
            }
        }
        return r;
    }

    static double[] layerNorm(double[] x, int cols, double eps) {
        double[] r = new double[x.length];
        int rows = cols == 0 ? 0 : x.length / cols;
        for (int row = 0; row < rows; row++) {
            int base = row * cols;
            double mean = 0;
            for (int j = 0; j < cols; j++) {
                mean += x[base + j];
            }
            mean /= cols;
            double var = 0;
            for (int j = 0; j < cols; j++) {
                double d = x[base + j] - mean;
                var += d * d;
            }
            double s = 1 / Math.sqrt(var / cols + eps);
            for (int j = 0; j < cols; j++) {
                r[base + j] = (x[base + j] - mean) * s;
            }
        }
        return r;
    }

    /** ggml_rope_ext with ext_factor 0 and attn_factor 1 (no YaRN), over x[..., tokens, heads, headDim]. */
    static double[] rope(double[] x, Shape xs, double[] positions, double[] freqFactors, Op.Rope op) {
        double[] r = x.clone();
        int headDim = xs.dim(-1);
        int heads = xs.dim(-2);
        int tokens = xs.dim(-3);
        int nRot = op.nRot();
        int half = nRot / 2;
        int outer = (int) xs.sub(0, xs.rank() - 3).size();
        double[] freq = new double[half];
        for (int i = 0; i < half; i++) {
            freq[i] = op.freqScale() * Math.pow(op.freqBase(), -2.0 * i / nRot)
                    / (freqFactors != null ? freqFactors[i] : 1);
        }
        for (int o = 0; o < outer; o++) {
            for (int t = 0; t < tokens; t++) {
                double p = positions[t];
                for (int h = 0; h < heads; h++) {
                    int base = ((o * tokens + t) * heads + h) * headDim;
                    for (int i = 0; i < half; i++) {
                        double theta = p * freq[i];
                        double c = Math.cos(theta);
                        double s = Math.sin(theta);
                        int i0 = op.mode() == Op.RopeMode.NORMAL ? base + 2 * i : base + i;
                        int i1 = op.mode() == Op.RopeMode.NORMAL ? i0 + 1 : i0 + half;
                        double x0 = x[i0];
                        double x1 = x[i1];
                        r[i0] = x0 * c - x1 * s;
                        r[i1] = x0 * s + x1 * c;
                    }
                }
            }
        }
        return r;
    }

    static int rowIndex(double id, int rows, int node) {
        int row = (int) id;
        if (row < 0 || row >= rows) {
            throw new IllegalArgumentException("node %" + node + ": row id " + row + " out of range (expected: 0.."
                    + (rows - 1) + ")");
        }
        return row;
    }

    static double[] getRows(double[] table, Shape ts, double[] ids, int node) {
        int rows = ts.dim(0);
        int cols = ts.dim(1);
        double[] r = new double[Math.multiplyExact(ids.length, cols)];
        for (int i = 0; i < ids.length; i++) {
            System.arraycopy(table, rowIndex(ids[i], rows, node) * cols, r, i * cols, cols);
        }
        return r;
    }

    static double[] getRows(WeightRows w, double[] ids, int node) {
        int cols = w.cols();
        double[] r = new double[Math.multiplyExact(ids.length, cols)];
        float[] row = new float[cols];
        for (int i = 0; i < ids.length; i++) {
            w.row(rowIndex(ids[i], w.rows(), node), row);
            for (int j = 0; j < cols; j++) {
                r[i * cols + j] = row[j];
            }
        }
        return r;
    }

    static double[] scatterAddRows(double[] src, double[] ids, int rows, int cols, int node) {
        double[] r = new double[Math.multiplyExact(rows, cols)];
        for (int i = 0; i < ids.length; i++) {
            int base = rowIndex(ids[i], rows, node) * cols;
            for (int j = 0; j < cols; j++) {
                r[base + j] += src[i * cols + j];
            }
        }
        return r;
    }

    /**
     * paged_attention in double: token t's query heads over positions {@code 0..positions[t]} of its block table, the
     * softmax and the weighted values as {@link #attention} computes them.
     */
    static double[] pagedAttention(double[] q, Shape qs, double[] k, double[] v, Shape vs, double[] positions,
            double[] table, Shape ts, Op.PagedAttention a, int node) {
        int tokens = qs.dim(0);
        int hq = qs.dim(1);
        int d = qs.dim(2);
        int hkv = a.kvHeads();
        int slots = vs.dim(0);
        int dv = vs.dim(1) / hkv;
        int group = hq / hkv;
        int blocks = ts.dim(1);
        int bs = a.blockSize();
        double[] r = new double[tokens * hq * dv];
        double[] p = new double[blocks * bs];
        int[] row = new int[blocks * bs];
        for (int t = 0; t < tokens; t++) {
            int pos = (int) positions[t];
            if (pos < 0 || pos >= blocks * bs) {
                throw new IllegalArgumentException("node %" + node + ": position " + pos + " of token " + t
                        + " (expected: 0.." + (blocks * bs - 1) + ", the block table's reach)");
            }
            int first = a.window() == 0 ? 0 : Math.max(0, pos - a.window() + 1);
            for (int j = first; j <= pos; j++) {
                int block = rowIndex(table[t * blocks + j / bs], slots / bs, node);
                row[j] = block * bs + j % bs;
            }
            for (int h = 0; h < hq; h++) {
                int kh = h / group;
                int qBase = (t * hq + h) * d;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = first; j <= pos; j++) {
                    int kBase = (row[j] * hkv + kh) * d;
                    double s = 0;
                    for (int c = 0; c < d; c++) {
                        s += q[qBase + c] * k[kBase + c];
                    }
                    s *= a.scale();
                    p[j] = a.softCap() > 0 ? a.softCap() * Math.tanh(s / a.softCap()) : s;
                    max = Math.max(max, p[j]);
                }
                double sum = 0;
                for (int j = first; j <= pos; j++) {
                    p[j] = Math.exp(p[j] - max);
                    sum += p[j];
                }
                int oBase = (t * hq + h) * dv;
                for (int j = first; j <= pos; j++) {
                    double w = p[j] / sum;
                    int vBase = (row[j] * hkv + kh) * dv;
                    for (int c = 0; c < dv; c++) {
                        r[oBase + c] += w * v[vBase + c];
                    }
                }
            }
        }
        return r;
    }

    static double[] attention(double[] q, Shape qs, double[] k, Shape ks, double[] v, Shape vs, double scale,
            int window, double softCap) {
        int rank = qs.rank();
        int hq = qs.dim(rank - 3);
        int tq = qs.dim(rank - 2);
        int d = qs.dim(rank - 1);
        int hkv = ks.dim(rank - 3);
        int tk = ks.dim(rank - 2);
        int dv = vs.dim(rank - 1);
        int group = hq / hkv;
        int batches = (int) qs.sub(0, rank - 3).size();
        double[] r = new double[batches * hq * tq * dv];
        double[] p = new double[tk];
        for (int b = 0; b < batches; b++) {
            for (int h = 0; h < hq; h++) {
                int kh = h / group;
                int qBase = (b * hq + h) * tq * d;
                int kBase = (b * hkv + kh) * tk * d;
                int vBase = (b * hkv + kh) * tk * dv;
                for (int i = 0; i < tq; i++) {
                    int pos = i + tk - tq;
                    int first = window == 0 ? 0 : Math.max(0, pos - window + 1);
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = first; j <= pos; j++) {
                        double s = 0;
                        for (int c = 0; c < d; c++) {
                            s += q[qBase + i * d + c] * k[kBase + j * d + c];
                        }
                        s *= scale;
                        p[j] = softCap > 0 ? softCap * Math.tanh(s / softCap) : s;
                        max = Math.max(max, p[j]);
                    }
                    double sum = 0;
                    for (int j = first; j <= pos; j++) {
                        p[j] = Math.exp(p[j] - max);
                        sum += p[j];
                    }
                    int oBase = ((b * hq + h) * tq + i) * dv;
                    for (int j = first; j <= pos; j++) {
                        double w = p[j] / sum;
                        for (int c = 0; c < dv; c++) {
                            r[oBase + c] += w * v[vBase + j * dv + c];
                        }
                    }
                }
            }
        }
        return r;
    }

    static double[] permute(double[] x, Shape xs, List<Integer> axes) {
        int rank = xs.rank();
        long[] inStrides = xs.strides();
        int[] dims = new int[rank];
        long[] s = new long[rank];
        for (int i = 0; i < rank; i++) {
            dims[i] = xs.dim(axes.get(i));
            s[i] = inStrides[axes.get(i)];
        }
        double[] r = new double[x.length];
        int[] idx = new int[rank];
        long ix = 0;
        for (int o = 0; o < r.length; o++) {
            r[o] = x[(int) ix];
            for (int d = rank - 1; d >= 0; d--) {
                ix += s[d];
                if (++idx[d] < dims[d]) {
                    break;
                }
                ix -= s[d] * dims[d];
                idx[d] = 0;
            }
        }
        return r;
    }

    static double[] concat(double[][] parts, Shape[] shapes, int axis, Shape out) {
        double[] r = new double[out.sizeAsInt()];
        int outer = (int) out.sub(0, axis).size();
        int inner = (int) out.sub(axis + 1, out.rank()).size();
        int outRow = out.dim(axis) * inner;
        int at = 0;
        for (int p = 0; p < parts.length; p++) {
            int chunk = shapes[p].dim(axis) * inner;
            for (int o = 0; o < outer; o++) {
                System.arraycopy(parts[p], o * chunk, r, o * outRow + at, chunk);
            }
            at += chunk;
        }
        return r;
    }

    static double[] slice(double[] x, Shape xs, int axis, int start, Shape out) {
        double[] r = new double[out.sizeAsInt()];
        int outer = (int) xs.sub(0, axis).size();
        int inner = (int) xs.sub(axis + 1, xs.rank()).size();
        int inRow = xs.dim(axis) * inner;
        int chunk = out.dim(axis) * inner;
        for (int o = 0; o < outer; o++) {
            System.arraycopy(x, o * inRow + start * inner, r, o * chunk, chunk);
        }
        return r;
    }

    static double[] pad(double[] x, Shape xs, int axis, int before, Shape out) {
        double[] r = new double[out.sizeAsInt()];
        int outer = (int) xs.sub(0, axis).size();
        int inner = (int) xs.sub(axis + 1, xs.rank()).size();
        int chunk = xs.dim(axis) * inner;
        int outRow = out.dim(axis) * inner;
        for (int o = 0; o < outer; o++) {
            System.arraycopy(x, o * chunk, r, o * outRow + before * inner, chunk);
        }
        return r;
    }
}
