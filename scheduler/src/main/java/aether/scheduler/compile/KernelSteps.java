package aether.scheduler.compile;

import static aether.scheduler.compile.KernelGraph.F32;
import static aether.scheduler.compile.KernelGraph.I32;

import aether.device.cpu.KernelPool;
import aether.device.cpu.RangeTask;
import aether.device.cpu.kernel.Matmul;
import aether.device.cpu.kernel.PackedWeights;
import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.exec.WeightRows;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The steps of a {@link KernelGraph}: one preallocated object per node, built with its segments and scratch, run any
 * number of times without allocating. Elementwise arithmetic is float32 (as the values are stored); norms accumulate
 * their sums in double.
 */
final class KernelSteps {

    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    /**
     * Matmuls whose weight bytes times tokens are below this run on the calling thread alone (see {@link
     * KernelGraph#compile}).
     */
    static final long PARALLEL_MIN_WEIGHT_BYTES = 256 * 1024;
    /** Attention steps with fewer multiply-adds than this run on the calling thread alone. */
    static final long PARALLEL_MIN_ATTENTION_MACS = 64 * 1024;

    /** One dispatch. */
    interface Step {
        void run();
    }

    private final OpGraph g;
    private final MemorySegment[] storage;
    private final WeightRows[] weights;
    private final Matmul matmul;
    private final Matmul serialMatmul;
    /** Prepared (repacked) weights shared by the model's graphs; null reads every weight in its GGUF layout. */
    private final PackedWeightCache packed;
    private final KernelPool pool;
    /** Per Matmul instance, the input node of the last matmul step built on it (steps run in build order). */
    private final java.util.Map<Matmul, Integer> lastInput = new java.util.HashMap<>();

    KernelSteps(OpGraph g, MemorySegment[] storage, WeightRows[] weights, Matmul matmul, Matmul serialMatmul,
            PackedWeightCache packed,
            KernelPool pool) {
        this.g = g;
        this.storage = storage;
        this.weights = weights;
        this.matmul = matmul;
        this.serialMatmul = serialMatmul;
        this.packed = packed;
        this.pool = pool;
    }

    private MemorySegment in(Node n, int i) {
        return storage[n.input(i)];
    }

    private Shape shapeOf(Node n, int i) {
        return g.node(n.input(i)).shape();
    }

    /** The step of {@code n}, or null for leaves and views. */
    Step step(Node n) {
        MemorySegment out = storage[n.id()];
        long size = n.shape().size();
        return switch (n.op()) {
            case Op.Input i -> null;
            case Op.Full f -> null;
            case Op.Reshape r -> null;
            case Op.Unary u -> new Map1(pool, in(n, 0), out, size, u.fn(), 0, 0, 0);
            case Op.Scale s -> new Map1(pool, in(n, 0), out, size, null, 1, s.factor(), 0);
            case Op.Pow p -> new Map1(pool, in(n, 0), out, size, null, 2, p.exponent(), 0);
            case Op.Clamp c -> new Map1(pool, in(n, 0), out, size, null, 3, c.min(), c.max());
            case Op.Cast c -> new Map1(pool, in(n, 0), out, size, null, c.to().equals(DType.F16) ? 4
                    : c.to().equals(DType.BF16) ? 5 : 6, 0, 0);
            case Op.Binary b -> new Binary(pool, b.fn(), in(n, 0), shapeOf(n, 0), in(n, 1), shapeOf(n, 1), out, n.shape());
            case Op.Reduce r -> new Reduce(r.fn(), in(n, 0), shapeOf(n, 0), r.axis(), out);
            case Op.Slice s -> {
                Shape xs = shapeOf(n, 0);
                long inner = xs.sub(s.axis() + 1, xs.rank()).size();
                yield new Slice(in(n, 0), out, xs.sub(0, s.axis()).size(), (s.end() - s.start()) * inner,
                        s.start() * inner, xs.dim(s.axis()) * inner);
            }
            case Op.RmsNorm r -> new Norm(in(n, 0), out, n.shape().dim(-1), size, r.eps(), false);
            case Op.LayerNorm l -> new Norm(in(n, 0), out, n.shape().dim(-1), size, l.eps(), true);
            case Op.Rope r -> new Rope(r, in(n, 0), n.shape(), in(n, 1),
                    n.inputs().size() > 2 ? in(n, 2) : null, out);
            case Op.GetRows gr -> new GetRows(weights[n.input(0)], in(n, 0), shapeOf(n, 0), in(n, 1),
                    (int) shapeOf(n, 1).size(), out, n);
            case Op.MatMul m -> {
                WeightRows w = weights[n.input(1)];
                int k = w.cols();
                int tokens = (int) (shapeOf(n, 0).size() / k);
                if (Matmul.SUPPORTED.contains(w.type()) && w.storage().isPresent()) {
                    boolean small = serialMatmul != null    // work grows with the tokens (GEMM re-reads nothing)
                            && w.type().bytesFor((long) w.rows() * k) * tokens < PARALLEL_MIN_WEIGHT_BYTES;
                    MemorySegment storageW = w.storage().get();
                    PackedWeights pw = packed != null ? packed.get(w.type(), storageW, w.rows(), k)
                            : PackedWeights.wrap(w.type(), storageW, w.rows(), k);
                    Matmul mm = small ? serialMatmul : matmul;
                    // graph values are written once and their memory is not reused while they are live, so a matmul
                    // reading the node its instance's previous matmul read (q, k, v of one normed row; gate, up)
                    // finds the activations that call quantized still valid
                    boolean sameInput = lastInput.getOrDefault(mm, -1) == n.input(0);
                    lastInput.put(mm, n.input(0));
                    yield new MatMulW(mm, pw, in(n, 0).asSlice(0, (long) tokens * k * 4), tokens, out, sameInput);
                }
                yield new MatMulRows(pool, w, in(n, 0), tokens, out);
            }
            case Op.KvStore kv -> new KvStore(in(n, 0), n.dtype().ggml(), n.shape().dim(0), n.shape().dim(1),
                    in(n, 1), in(n, 2), shapeOf(n, 2).dim(0), n);
            case Op.PagedAttention a -> new PagedAttention(pool, a, in(n, 0), shapeOf(n, 0), in(n, 1),
                    g.node(n.input(1)).type().dtype().ggml(), in(n, 2), g.node(n.input(2)).type().dtype().ggml(),
                    shapeOf(n, 2), in(n, 3), in(n, 4), shapeOf(n, 4).dim(1), out, n);
            default -> throw KernelGraph.unsupported(n, "no kernel");
        };
    }

    // ---- elementwise -----------------------------------------------------------------------------------------------

    static float unary(Op.UnaryFn fn, float x) {
        return switch (fn) {
            case NEG -> -x;
            case ABS -> Math.abs(x);
            case EXP -> (float) Math.exp(x);
            case LOG -> (float) Math.log(x);
            case SQRT -> (float) Math.sqrt(x);
            case RSQRT -> (float) (1 / Math.sqrt(x));
            case TANH -> (float) Math.tanh(x);
            case SIGMOID -> (float) (1 / (1 + Math.exp(-x)));
            case RELU -> x > 0 ? x : 0;
            case GELU -> (float) (0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));
            case SILU -> (float) (x / (1 + Math.exp(-x)));
            case SIGN -> Math.signum(x);
            case STEP -> x > 0 ? 1 : 0;
            case GELU_DERIV, SILU_DERIV -> throw new IllegalStateException(fn + " is a training op");
        };
    }

    /**
     * One-input elementwise: a unary function or scale/pow/clamp/cast by {@code kind}. From {@value #PARALLEL_MIN}
     * elements on it is split across the pool in chunks of {@value #MAP_CHUNK}: a prefill's SiLU over [128, 8192] per
     * layer was the largest non-GEMM, non-attention cost of a 1B Q4_0 prefill (99 ms of 1.78 s on one thread; 52 ms
     * split over 2 threads, EngineDecodeProbe, when the second core was free). Decode-sized ops stay on the caller: on
     * a loaded machine waking a worker for 8192 elements cost more than the work. Elementwise, so the split changes no
     * value.
     */
    static final class Map1 implements Step, RangeTask {
        static final int MAP_CHUNK = 2048;
        static final long PARALLEL_MIN = 1 << 16;
        private final KernelPool pool;
        private final MemorySegment x;
        private final MemorySegment out;
        private final long size;
        private final Op.UnaryFn fn;
        private final int kind;
        private final float a;
        private final float b;
        private final double exponent;

        Map1(KernelPool pool, MemorySegment x, MemorySegment out, long size, Op.UnaryFn fn, int kind, double a, double b) {
            this.pool = pool;
            this.x = x;
            this.out = out;
            this.size = size;
            this.fn = fn;
            this.kind = kind;
            this.a = (float) a;
            this.b = (float) b;
            this.exponent = a;
        }

        @Override
        public void run() {
            long chunks = (size + MAP_CHUNK - 1) / MAP_CHUNK;
            if (size >= PARALLEL_MIN && pool != null && pool.threads() > 1 && chunks <= Integer.MAX_VALUE) {
                pool.parallelFor((int) chunks, 1, this);
            } else {
                map(0, size);
            }
        }

        @Override
        public void run(int from, int to, int thread) {
            map((long) from * MAP_CHUNK, Math.min(size, (long) to * MAP_CHUNK));
        }

        private void map(long from, long to) {
            for (long i = from; i < to; i++) {
                float v = x.getAtIndex(F32, i);
                float r = switch (kind) {
                    case 0 -> unary(fn, v);
                    case 1 -> v * a;
                    case 2 -> (float) Math.pow(v, exponent);
                    case 3 -> Math.min(Math.max(v, a), b);
                    case 4 -> Float.float16ToFloat(Float.floatToFloat16(v));
                    case 5 -> bf16(v);
                    default -> v;
                };
                out.setAtIndex(F32, i, r);
            }
        }

        private static float bf16(float f) {
            int bits = Float.floatToRawIntBits(f);
            if (Float.isNaN(f)) {
                return f;
            }
            bits = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;   // round to nearest even
            return Float.intBitsToFloat(bits);
        }
    }

    /** Two-input elementwise with NumPy broadcasting, walking the output row by row. */
    static final class Binary implements Step, RangeTask {
        private final KernelPool pool;
        private final Op.BinaryFn fn;
        private final MemorySegment a;
        private final MemorySegment b;
        private final MemorySegment out;
        private final int rank;
        private final int[] dims;
        private final long[] aStride;
        private final long[] bStride;
        private final int[][] counters;   // per thread: the odometer over the outer dimensions
        private final long rows;
        private final int cols;

        Binary(KernelPool pool, Op.BinaryFn fn, MemorySegment a, Shape as, MemorySegment b, Shape bs, MemorySegment out,
               Shape os) {
            this.pool = pool;
            this.fn = fn;
            this.a = a;
            this.b = b;
            this.out = out;
            this.rank = Math.max(os.rank(), 1);
            this.dims = new int[rank];
            for (int i = 0; i < os.rank(); i++) {
                dims[i] = os.dim(i);
            }
            if (os.rank() == 0) {
                dims[0] = 1;
            }
            this.aStride = strides(as, os);
            this.bStride = strides(bs, os);
            this.counters = new int[pool != null ? pool.threads() : 1][rank];
            this.cols = dims[rank - 1];
            this.rows = cols == 0 ? 0 : os.size() / cols;
        }

        private long[] strides(Shape s, Shape os) {
            long[] st = new long[rank];
            long stride = 1;
            for (int i = s.rank() - 1; i >= 0; i--) {
                int o = i + (os.rank() - s.rank());
                st[Math.max(o, 0)] = s.dim(i) == 1 ? 0 : stride;
                stride *= s.dim(i);
            }
            return st;
        }

        /**
         * From {@link Map1#PARALLEL_MIN} output elements on (a prefill's residual adds and gate multiply), output rows
         * are split across the pool: 47 ms → 26-30 ms of a 1B Q4_0 prefill on 2 threads (EngineDecodeProbe, alternated
         * runs, load ~4-5); each row is computed as before.
         */
        @Override
        public void run() {
            if (pool != null && pool.threads() > 1 && rows >= 2 && rows * cols >= Map1.PARALLEL_MIN
                    && rows <= Integer.MAX_VALUE) {
                pool.parallelFor((int) rows, 1, this);
            } else {
                walk(0, rows, counters[0]);
            }
        }

        @Override
        public void run(int from, int to, int thread) {
            walk(from, to, counters[thread]);
        }

        /** Output rows {@code [from, to)}. */
        private void walk(long from, long to, int[] counter) {
            long aOff = 0;
            long bOff = 0;
            long rem = from;
            for (int d = rank - 2; d >= 0; d--) {   // the odometer at row `from`
                counter[d] = (int) (rem % dims[d]);
                rem /= dims[d];
                aOff += counter[d] * aStride[d];
                bOff += counter[d] * bStride[d];
            }
            long sa = aStride[rank - 1];
            long sb = bStride[rank - 1];
            long o = from * cols;
            for (long r = from; r < to; r++) {
                switch (fn) {
                    case ADD -> {
                        for (int j = 0; j < cols; j++) {
                            out.setAtIndex(F32, o + j, a.getAtIndex(F32, aOff + j * sa) + b.getAtIndex(F32, bOff + j * sb));
                        }
                    }
                    case MUL -> {
                        for (int j = 0; j < cols; j++) {
                            out.setAtIndex(F32, o + j, a.getAtIndex(F32, aOff + j * sa) * b.getAtIndex(F32, bOff + j * sb));
                        }
                    }
                    default -> {
                        for (int j = 0; j < cols; j++) {
                            out.setAtIndex(F32, o + j, apply(a.getAtIndex(F32, aOff + j * sa),
                                    b.getAtIndex(F32, bOff + j * sb)));
                        }
                    }
                }
                o += cols;
                for (int d = rank - 2; d >= 0; d--) {   // odometer over the outer dimensions
                    counter[d]++;
                    aOff += aStride[d];
                    bOff += bStride[d];
                    if (counter[d] < dims[d]) {
                        break;
                    }
                    aOff -= aStride[d] * dims[d];
                    bOff -= bStride[d] * dims[d];
                    counter[d] = 0;
                }
            }
        }

        private float apply(float x, float y) {
            return switch (fn) {
                case ADD -> x + y;
                case SUB -> x - y;
                case MUL -> x * y;
                case DIV -> x / y;
                case POW -> (float) Math.pow(x, y);
                case EQ -> x == y ? 1 : 0;
            };
        }
    }

    /** sum/mean/max along one axis. */
    static final class Reduce implements Step {
        private final Op.ReduceFn fn;
        private final MemorySegment x;
        private final MemorySegment out;
        private final long outer;
        private final int len;
        private final long inner;

        Reduce(Op.ReduceFn fn, MemorySegment x, Shape xs, int axis, MemorySegment out) {
            this.fn = fn;
            this.x = x;
            this.out = out;
            this.outer = xs.sub(0, axis).size();
            this.len = xs.dim(axis);
            this.inner = xs.sub(axis + 1, xs.rank()).size();
        }

        @Override
        public void run() {
            for (long o = 0; o < outer; o++) {
                for (long i = 0; i < inner; i++) {
                    long base = o * len * inner + i;
                    double acc = fn == Op.ReduceFn.MAX ? Double.NEGATIVE_INFINITY : 0;
                    for (int j = 0; j < len; j++) {
                        float v = x.getAtIndex(F32, base + j * inner);
                        acc = fn == Op.ReduceFn.MAX ? Math.max(acc, v) : acc + v;
                    }
                    out.setAtIndex(F32, o * inner + i, (float) (fn == Op.ReduceFn.MEAN ? acc / len : acc));
                }
            }
        }
    }

    /** Copies a contiguous chunk of every outer row. */
    static final class Slice implements Step {
        private final MemorySegment x;
        private final MemorySegment out;
        private final long outer;
        private final long chunk;
        private final long start;
        private final long rowLen;

        Slice(MemorySegment x, MemorySegment out, long outer, long chunk, long start, long rowLen) {
            this.x = x;
            this.out = out;
            this.outer = outer;
            this.chunk = chunk;
            this.start = start;
            this.rowLen = rowLen;
        }

        @Override
        public void run() {
            for (long o = 0; o < outer; o++) {
                MemorySegment.copy(x, (o * rowLen + start) * 4, out, o * chunk * 4, chunk * 4);
            }
        }
    }

    /** RMSNorm or LayerNorm (no affine part) over rows of {@code cols}; sums in double. */
    static final class Norm implements Step {
        private final MemorySegment x;
        private final MemorySegment out;
        private final int cols;
        private final long rows;
        private final double eps;
        private final boolean center;

        Norm(MemorySegment x, MemorySegment out, int cols, long size, double eps, boolean center) {
            this.x = x;
            this.out = out;
            this.cols = cols;
            this.rows = cols == 0 ? 0 : size / cols;
            this.eps = eps;
            this.center = center;
        }

        @Override
        public void run() {
            for (long r = 0; r < rows; r++) {
                long base = r * cols;
                double mean = 0;
                if (center) {
                    for (int c = 0; c < cols; c++) {
                        mean += x.getAtIndex(F32, base + c);
                    }
                    mean /= cols;
                }
                double ss = 0;
                for (int c = 0; c < cols; c++) {
                    double v = x.getAtIndex(F32, base + c) - mean;
                    ss += v * v;
                }
                float scale = (float) (1 / Math.sqrt(ss / cols + eps));
                float m = (float) mean;
                for (int c = 0; c < cols; c++) {
                    out.setAtIndex(F32, base + c, (x.getAtIndex(F32, base + c) - m) * scale);
                }
            }
        }
    }

    /** RoPE at positions read from an I32 segment each run; the angle of each (token, pair) is computed once. */
    static final class Rope implements Step {
        private final MemorySegment x;
        private final MemorySegment positions;
        private final MemorySegment out;
        private final boolean neox;
        private final int outer;
        private final int tokens;
        private final int heads;
        private final int headDim;
        private final int half;
        private final double[] freq;
        private final float[] cos;
        private final float[] sin;

        Rope(Op.Rope op, MemorySegment x, Shape xs, MemorySegment positions, MemorySegment factors,
                MemorySegment out) {
            this.x = x;
            this.positions = positions;
            this.out = out;
            this.neox = op.mode() == Op.RopeMode.NEOX;
            this.headDim = xs.dim(-1);
            this.heads = xs.dim(-2);
            this.tokens = xs.dim(-3);
            this.outer = (int) xs.sub(0, xs.rank() - 3).size();
            this.half = op.nRot() / 2;
            this.freq = new double[half];
            for (int i = 0; i < half; i++) {
                freq[i] = op.freqScale() * Math.pow(op.freqBase(), -2.0 * i / op.nRot())
                        / (factors != null ? factors.getAtIndex(F32, i) : 1);
            }
            this.cos = new float[half];
            this.sin = new float[half];
        }

        @Override
        public void run() {
            if (x != out) {
                MemorySegment.copy(x, 0, out, 0, (long) outer * tokens * heads * headDim * 4);
            }
            for (int t = 0; t < tokens; t++) {
                double p = positions.getAtIndex(I32, t);
                for (int i = 0; i < half; i++) {
                    double theta = p * freq[i];
                    cos[i] = (float) Math.cos(theta);
                    sin[i] = (float) Math.sin(theta);
                }
                for (int o = 0; o < outer; o++) {
                    for (int h = 0; h < heads; h++) {
                        long base = (((long) o * tokens + t) * heads + h) * headDim;
                        for (int i = 0; i < half; i++) {
                            long i0 = neox ? base + i : base + 2L * i;
                            long i1 = neox ? i0 + half : i0 + 1;
                            float x0 = x.getAtIndex(F32, i0);
                            float x1 = x.getAtIndex(F32, i1);
                            out.setAtIndex(F32, i0, x0 * cos[i] - x1 * sin[i]);
                            out.setAtIndex(F32, i1, x0 * sin[i] + x1 * cos[i]);
                        }
                    }
                }
            }
        }
    }

    /**
     * Rows of a weight (dequantized through a scratch row) or of an f32 table, selected by I32 ids. A block-type
     * table in one segment is decoded one block per codec call: the same values as a whole-row call, but the codec
     * is then invoked often enough (tens of times per step instead of once) for the JIT to compile its vector path
     * within the first hundred or so decode steps; until then the interpreted Vector API allocates.
     */
    static final class GetRows implements Step {
        private final WeightRows w;
        private final aether.runtime.quant.BlockCodec codec;
        private final MemorySegment blocks;
        private final long rowBytes;
        private final MemorySegment table;
        private final int rows;
        private final int cols;
        private final MemorySegment ids;
        private final int count;
        private final MemorySegment out;
        private final float[] row;
        private final Node node;

        GetRows(WeightRows w, MemorySegment table, Shape ts, MemorySegment ids, int count, MemorySegment out,
                Node node) {
            this.w = w;
            this.table = table;
            this.rows = ts.dim(0);
            this.cols = ts.dim(1);
            this.ids = ids;
            this.count = count;
            this.out = out;
            this.row = new float[cols];
            this.node = node;
            boolean perBlock = w != null && w.type().blockSize() > 1 && w.storage().isPresent()
                    && aether.runtime.quant.BlockCodecs.find(w.type()).isPresent();
            // Scalar decoding: one row per token is too lukewarm for C2, and interpreted or C1-compiled Vector API
            // code boxes every vector (~1.8 KB per Q4_0 block measured: 119 KB per decode step of a 1B Q4_0 model).
            this.codec = perBlock ? aether.runtime.quant.BlockCodecs.requireScalar(w.type()) : null;
            this.blocks = perBlock ? w.storage().get() : null;
            this.rowBytes = w != null ? w.type().bytesFor(cols) : 0;
        }

        @Override
        public void run() {
            for (int i = 0; i < count; i++) {
                int id = ids.getAtIndex(I32, i);
                if (id < 0 || id >= rows) {
                    throw new IllegalArgumentException("node %" + node.id() + ": row id " + id + " out of range"
                            + " (expected: 0.." + (rows - 1) + ")");
                }
                if (codec != null) {
                    codec.dequantize(blocks, id * rowBytes, row, 0, cols);   // a row is whole contiguous blocks
                    MemorySegment.copy(row, 0, out, F32, (long) i * cols * 4, cols);
                } else if (w != null) {
                    w.row(id, row);
                    MemorySegment.copy(row, 0, out, F32, (long) i * cols * 4, cols);
                } else {
                    MemorySegment.copy(table, (long) id * cols * 4, out, (long) i * cols * 4, (long) cols * 4);
                }
            }
        }
    }

    // ---- matmul ----------------------------------------------------------------------------------------------------

    /** x · Wᵀ through device-workers' Matmul (blocks read in place, multi-threaded). */
    static final class MatMulW implements Step {
        private final Matmul matmul;
        private final PackedWeights w;
        private final MemorySegment x;
        private final int tokens;
        private final MemorySegment out;
        /** x is the input of the previous matmul step on the same Matmul (its quantized activations are reused). */
        private final boolean sameInput;

        MatMulW(Matmul matmul, PackedWeights w, MemorySegment x, int tokens, MemorySegment out, boolean sameInput) {
            this.matmul = matmul;
            this.w = w;
            this.x = x;
            this.tokens = tokens;
            this.out = out;
            this.sameInput = sameInput;
        }

        @Override
        public void run() {
            matmul.multiply(w, x, tokens, out, sameInput);
        }
    }

    /** x · Wᵀ for weight types without a block kernel: rows dequantized into per-thread scratch. */
    static final class MatMulRows implements Step, RangeTask {
        private final KernelPool pool;
        private final WeightRows w;
        private final MemorySegment x;
        private final int tokens;
        private final MemorySegment out;
        private final float[][] scratch;

        MatMulRows(KernelPool pool, WeightRows w, MemorySegment x, int tokens, MemorySegment out) {
            this.pool = pool;
            this.w = w;
            this.x = x;
            this.tokens = tokens;
            this.out = out;
            this.scratch = new float[pool.threads()][w.cols()];
        }

        @Override
        public void run() {
            pool.parallelFor(w.rows(), 16, this);
        }

        @Override
        public void run(int from, int to, int thread) {
            float[] row = scratch[thread];
            int k = w.cols();
            for (int r = from; r < to; r++) {
                w.row(r, row);
                for (int t = 0; t < tokens; t++) {
                    long xb = (long) t * k;
                    float s = 0;
                    for (int c = 0; c < k; c++) {
                        s += row[c] * x.getAtIndex(F32, xb + c);
                    }
                    out.setAtIndex(F32, (long) t * w.rows() + r, s);
                }
            }
        }
    }

    // ---- KV cache --------------------------------------------------------------------------------------------------

    /** Writes f32 rows into cache rows named by I32 slots, converting to the cache's storage type. */
    static final class KvStore implements Step {
        private final MemorySegment cache;
        private final GgmlType type;
        private final int slots;
        private final int width;
        private final long rowBytes;
        private final MemorySegment rows;
        private final MemorySegment slotIds;
        private final int tokens;
        private final float[] block = new float[32];
        private final Node node;

        KvStore(MemorySegment cache, GgmlType type, int slots, int width, MemorySegment rows, MemorySegment slotIds,
                int tokens, Node node) {
            this.cache = cache;
            this.type = type;
            this.slots = slots;
            this.width = width;
            this.rowBytes = type.bytesFor(width);
            this.rows = rows;
            this.slotIds = slotIds;
            this.tokens = tokens;
            this.node = node;
        }

        @Override
        public void run() {
            for (int t = 0; t < tokens; t++) {
                int slot = slotIds.getAtIndex(I32, t);
                if (slot < 0 || slot >= slots) {
                    throw new IllegalArgumentException("node %" + node.id() + ": cache slot " + slot + " of token "
                            + t + " (expected: 0.." + (slots - 1) + ")");
                }
                long src = (long) t * width;
                long dst = slot * rowBytes;
                switch (type) {
                    case F32 -> MemorySegment.copy(rows, src * 4, cache, dst, (long) width * 4);
                    case F16 -> {
                        for (int c = 0; c < width; c++) {
                            cache.set(F16, dst + 2L * c, Float.floatToFloat16(rows.getAtIndex(F32, src + c)));
                        }
                    }
                    default -> {
                        for (int b = 0; b < width; b += 32) {
                            MemorySegment.copy(rows, F32, (src + b) * 4, block, 0, 32);
                            quantizeQ8_0(block, cache, dst + (b / 32) * 34L);
                        }
                    }
                }
            }
        }

        /** ggml's quantize_row_q8_0 (AVX2 rounding: nearest even), as {@code CacheTensor} models it. */
        static void quantizeQ8_0(float[] x, MemorySegment out, long at) {
            float amax = 0;
            for (int i = 0; i < 32; i++) {
                amax = Math.max(amax, Math.abs(x[i]));
            }
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            out.set(F16, at, Float.floatToFloat16(d));
            for (int i = 0; i < 32; i++) {
                out.set(ValueLayout.JAVA_BYTE, at + 2 + i, (byte) (int) Math.rint(x[i] * id));
            }
        }
    }

    /**
     * Paged causal attention, split over (token, query head) pairs on the pool. Per pair: scores against the visible
     * positions (their cache rows found through the block table), a max-subtracted softmax, the weighted sum of
     * values; all in float with a per-thread scratch of scores and accumulators.
     */
    static final class PagedAttention implements Step, RangeTask {
        /**
         * Whether runs may take (token, KV head) items (see {@link #runGrouped}); false forces the per-head items, for
         * tests that compare the two bit for bit and for {@code AttentionRace}. Read once per run.
         */
        static volatile boolean groupKvHeads = true;
        private final KernelPool pool;
        private final MemorySegment q;
        private final MemorySegment k;
        private final GgmlType kType;
        private final MemorySegment v;
        private final GgmlType vType;
        private final MemorySegment positions;
        private final MemorySegment table;
        private final MemorySegment out;
        private final int tokens;
        private final int hq;
        private final int hkv;
        private final int d;
        private final int dv;
        private final int group;
        private final int blocks;
        private final int bs;
        private final int slots;
        private final int window;
        private final float scale;
        private final float softCap;
        private final long kRowBytes;
        private final long vRowBytes;
        private final float[][] scores;
        private final float[][] qRow;
        private final float[][] acc;
        private final boolean widenOnce;   // f16 cache, vector kernels: a KV row widened once for its query heads
        private final float[][] qGroup;    // per thread: the group's query rows
        private final float[][] accGroup;  // per thread: the group's output accumulators
        private final float[][] kRow;      // per thread: the key row of the position in hand, widened
        private final float[][] vRow;      // per thread: the value row, widened
        private final float[][] maxes;     // per thread: running max of each query head of the group
        private final float[][] inverses;  // per thread: 1 / softmax sum of each query head of the group
        private boolean grouped;           // this run's items are (token, KV head) pairs
        private final Node node;

        PagedAttention(KernelPool pool, Op.PagedAttention a, MemorySegment q, Shape qs, MemorySegment k,
                GgmlType kType, MemorySegment v, GgmlType vType, Shape vs, MemorySegment positions,
                MemorySegment table, int blocks, MemorySegment out, Node node) {
            this.pool = pool;
            this.q = q;
            this.k = k;
            this.kType = kType;
            this.v = v;
            this.vType = vType;
            this.positions = positions;
            this.table = table;
            this.out = out;
            this.tokens = qs.dim(0);
            this.hq = qs.dim(1);
            this.d = qs.dim(2);
            this.hkv = a.kvHeads();
            this.dv = vs.dim(1) / hkv;
            this.group = hq / hkv;
            this.blocks = blocks;
            this.bs = a.blockSize();
            this.slots = vs.dim(0);
            this.window = a.window();
            this.scale = (float) a.scale();
            this.softCap = (float) a.softCap();
            this.kRowBytes = kType.bytesFor((long) hkv * d);
            this.vRowBytes = vType.bytesFor((long) hkv * dv);
            int threads = pool.threads();
            this.widenOnce = group > 1 && kType == GgmlType.F16 && vType == GgmlType.F16 && AttentionKernels.vectorFor(d)
                    && AttentionKernels.vectorFor(dv) && d <= AttentionKernels.MAX_WIDEN && dv <= AttentionKernels.MAX_WIDEN;
            int heads = widenOnce ? group : 1;
            this.scores = new float[threads][heads * blocks * bs];
            this.qRow = new float[threads][d];          // the per-head path's dot and axpy take their length from these
            this.acc = new float[threads][dv];
            this.qGroup = new float[threads][widenOnce ? group * d : 0];
            this.accGroup = new float[threads][widenOnce ? group * dv : 0];
            this.kRow = new float[threads][widenOnce ? d : 0];
            this.vRow = new float[threads][widenOnce ? dv : 0];
            this.maxes = new float[threads][heads];
            this.inverses = new float[threads][heads];
            this.node = node;
        }

        @Override
        public void run() {
            for (int t = 0; t < tokens; t++) {   // checked once per run, before any thread reads the table
                int pos = positions.getAtIndex(I32, t);
                if (pos < 0 || pos >= blocks * bs) {
                    throw new IllegalArgumentException("node %" + node.id() + ": position " + pos + " of token " + t
                            + " (expected: 0.." + (blocks * bs - 1) + ")");
                }
                for (int b = 0; b <= pos / bs; b++) {
                    int block = table.getAtIndex(I32, (long) t * blocks + b);
                    if (block < 0 || (long) block * bs >= slots) {
                        throw new IllegalArgumentException("node %" + node.id() + ": block " + block + " of token "
                                + t + " (expected: 0.." + (slots / bs - 1) + ")");
                    }
                }
            }
            long macs = 0;
            for (int t = 0; t < tokens; t++) {
                macs += (long) (positions.getAtIndex(I32, t) + 1) * hq * (d + dv);
            }
            // (token, KV head) items share each widened row between the group's query heads; when they would be too
            // few to keep every thread busy (decode of a model with few KV heads), (token, query head) items instead
            grouped = widenOnce && groupKvHeads && tokens * hkv >= 4 * pool.threads();
            int items = grouped ? tokens * hkv : tokens * hq;
            if (macs < PARALLEL_MIN_ATTENTION_MACS) {
                run(0, items, 0);      // waking the pool would cost more than this
            } else {
                pool.parallelFor(items, 1, this);
            }
        }

        @Override
        public void run(int from, int to, int thread) {
            if (grouped) {
                runGrouped(from, to, thread);
                return;
            }
            float[] p = scores[thread];
            float[] qv = qRow[thread];
            float[] o = acc[thread];
            for (int item = from; item < to; item++) {
                int t = item / hq;
                int h = item % hq;
                int kh = h / group;
                int pos = positions.getAtIndex(I32, t);
                int first = window == 0 ? 0 : Math.max(0, pos - window + 1);
                MemorySegment.copy(q, F32, ((long) t * hq + h) * d * 4, qv, 0, d);
                float max = Float.NEGATIVE_INFINITY;
                for (int j = first; j <= pos; j++) {
                    long slot = (long) table.getAtIndex(I32, (long) t * blocks + j / bs) * bs + j % bs;
                    float s = dot(qv, k, kType, slot * kRowBytes, kh * d) * scale;
                    if (softCap > 0) {
                        s = softCap * (float) Math.tanh(s / softCap);
                    }
                    p[j] = s;
                    max = Math.max(max, s);
                }
                float sum = 0;
                for (int j = first; j <= pos; j++) {
                    float e = (float) Math.exp(p[j] - max);
                    p[j] = e;
                    sum += e;
                }
                java.util.Arrays.fill(o, 0);
                float inv = 1 / sum;
                for (int j = first; j <= pos; j++) {
                    long slot = (long) table.getAtIndex(I32, (long) t * blocks + j / bs) * bs + j % bs;
                    axpy(p[j] * inv, v, vType, slot * vRowBytes, kh * dv, o);
                }
                MemorySegment.copy(o, 0, out, F32, ((long) t * hq + h) * dv * 4, dv);
            }
        }

        /**
         * Items {@code [from, to)} as (token, KV head) pairs over f16 caches: per visible position the key row is
         * widened to floats once and dotted with each of the group's query heads, and the value row likewise scaled
         * into each head's accumulator (the per-head path converts each row once per query head: 4 times for 32 query
         * heads over 8 KV heads). Per head the same operations in the same order as {@link #run(int, int, int)}'s
         * per-head items, so the output is the same bit for bit.
         */
        private void runGrouped(int from, int to, int thread) {
            float[] p = scores[thread];
            float[] qv = qGroup[thread];
            float[] o = accGroup[thread];
            float[] kf = kRow[thread];
            float[] vf = vRow[thread];
            float[] max = maxes[thread];
            float[] inv = inverses[thread];
            int stride = blocks * bs;
            for (int item = from; item < to; item++) {
                int t = item / hkv;
                int kh = item % hkv;
                int pos = positions.getAtIndex(I32, t);
                int first = window == 0 ? 0 : Math.max(0, pos - window + 1);
                MemorySegment.copy(q, F32, ((long) t * hq + (long) kh * group) * d * 4, qv, 0, group * d);
                java.util.Arrays.fill(max, Float.NEGATIVE_INFINITY);
                for (int j = first; j <= pos; j++) {
                    long slot = (long) table.getAtIndex(I32, (long) t * blocks + j / bs) * bs + j % bs;
                    long at = slot * kRowBytes + 2L * kh * d;
                    long special = AttentionKernels.widenF16Row(k, at, d, kf);
                    for (int g = 0; g < group; g++) {
                        float s = AttentionKernels.dotWidened(qv, g * d, kf, special, k, at, d) * scale;
                        if (softCap > 0) {
                            s = softCap * (float) Math.tanh(s / softCap);
                        }
                        p[g * stride + j] = s;
                        max[g] = Math.max(max[g], s);
                    }
                }
                for (int g = 0; g < group; g++) {
                    float sum = 0;
                    for (int j = first; j <= pos; j++) {
                        float e = (float) Math.exp(p[g * stride + j] - max[g]);
                        p[g * stride + j] = e;
                        sum += e;
                    }
                    inv[g] = 1 / sum;
                }
                java.util.Arrays.fill(o, 0, group * dv, 0);
                for (int j = first; j <= pos; j++) {
                    long slot = (long) table.getAtIndex(I32, (long) t * blocks + j / bs) * bs + j % bs;
                    long at = slot * vRowBytes + 2L * kh * dv;
                    long special = AttentionKernels.widenF16Row(v, at, dv, vf);
                    for (int g = 0; g < group; g++) {
                        AttentionKernels.axpyWidened(p[g * stride + j] * inv[g], vf, special, v, at, o, g * dv, dv);
                    }
                }
                MemorySegment.copy(o, 0, out, F32, ((long) t * hq + (long) kh * group) * dv * 4, group * dv);
            }
        }

        /** q · row[col0, col0 + q.length) of a cache row starting at byte {@code rowAt}. */
        private static float dot(float[] qv, MemorySegment c, GgmlType type, long rowAt, int col0) {
            int n = qv.length;
            return switch (type) {
                case F32 -> AttentionKernels.dotF32(qv, c, rowAt + 4L * col0, n);
                case F16 -> AttentionKernels.dotF16(qv, c, rowAt + 2L * col0, n);
                default -> AttentionKernels.dotQ8_0(qv, c, rowAt, col0, n);
            };
        }

        /** o += w * row[col0, col0 + o.length). */
        private static void axpy(float w, MemorySegment c, GgmlType type, long rowAt, int col0, float[] o) {
            switch (type) {
                case F32 -> AttentionKernels.axpyF32(w, c, rowAt + 4L * col0, o);
                case F16 -> AttentionKernels.axpyF16(w, c, rowAt + 2L * col0, o);
                default -> AttentionKernels.axpyQ8_0(w, c, rowAt, col0, o);
            }
        }
    }
}
