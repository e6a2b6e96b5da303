package aether.device.cuda;

import aether.device.spi.SegmentExecutionException;
import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.protocol.SegmentSpec;
import aether.runtime.protocol.WorkerCapabilities;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Lowers a scheduler segment's graph into launches of the kernels of {@code segment_kernels.cu}, in node order: every
 * value is f32, row-major and contiguous, in a segment input, a segment output (a computed node that is a graph output
 * is written straight into its output buffer) or the segment's scratch area (one region per computed node, no reuse).
 * Reshapes and f32-to-f32 casts are aliases, not copies. Shapes and strides of broadcast and strided reads, and the
 * batch offsets of matmul, go into one small metadata block that is uploaded once per segment, at the end of scratch.
 *
 * <p>Pure Java (no driver calls), so what a segment becomes is testable without a GPU. Anything outside {@link #OPS},
 * a value that is not f32, or a shape the kernels cannot take fails with a {@link SegmentExecutionException} naming the
 * node.
 */
public final class SegmentLowering {

    /**
     * Op kinds ({@link WorkerCapabilities#opKind}) the GPU runs; the CUDA device advertises exactly these, so the
     * scheduler places a segment there only when it holds nothing else.
     */
    public static final Set<String> OPS = Set.of("Input", "Full", "CausalMask", "Unary", "Pow", "Clamp", "Scale",
            "Binary", "Cast", "Reduce", "Softmax", "RmsNorm", "LayerNorm", "MatMul", "Reshape", "Permute", "Expand",
            "Concat", "Slice", "Pad");

    /** Broadcast and strided reads handle at most this many dimensions (after merging contiguous ones). */
    static final int MAX_RANK = 8;
    /** Matmul's batch goes into grid z (at most 65535). */
    static final int MAX_BATCH = 65_535;
    /** One block sums at most this many elements of a full reduction before the two-pass sum takes over. */
    static final long ONE_BLOCK_SUM = 1 << 16;
    /** Blocks of the two-pass sum's first pass. */
    static final int PARTIAL_BLOCKS = 1024;
    static final int ALIGN = 256;

    /** Where a value's first element is. */
    public sealed interface Buf {
        /** Segment input {@code index} (in {@link SegmentSpec#inputNodes()} order). */
        record In(int index) implements Buf {}

        /** Segment output {@code index} (in {@code graph.outputs()} order). */
        record Out(int index) implements Buf {}

        /** {@code byteOffset} bytes into the segment's scratch area. */
        record Scratch(long byteOffset) implements Buf {}
    }

    /** One launch (or stream operation); {@code node} and {@code op} name the graph node it computes, for failures. */
    public sealed interface Step {
        int node();

        String op();

        /** Elementwise: {@code y = f(x)} with {@code fn} a kernel function code. */
        record Unary(int node, String op, Buf x, Buf y, long n, int fn, float p0, float p1) implements Step {}

        /** {@code y = a fn b} with both operands read through strides at {@code metaOffset} (rank dims). */
        record Binary(int node, String op, Buf a, Buf b, Buf y, long n, int fn, long metaOffset, int rank)
                implements Step {}

        /** {@code y[i] = x[strided offset of i]}: permute, expand, mask broadcast. */
        record Gather(int node, String op, Buf x, Buf y, long n, long metaOffset, int rank) implements Step {}

        /** A rows x cols block copy between row strides (element offsets). */
        record CopyRows(int node, String op, Buf x, long xOff, long xStride, Buf y, long yOff, long yStride,
                long rows, long cols) implements Step {}

        record Fill(int node, String op, Buf y, long n, float value) implements Step {}

        record CausalMask(int node, String op, Buf y, int queries, int keys, int window) implements Step {}

        /** Reduction of x[outer][n][inner] along n; {@code inner == 1} is the last axis. fn: SUM, MEAN, MAX ordinal. */
        record Reduce(int node, String op, Buf x, Buf y, long outer, int n, long inner, int fn) implements Step {}

        /** First pass of a long sum: {@code blocks} partial sums of x into {@code partial}. */
        record SumPartial(int node, String op, Buf x, Buf partial, long n, int blocks) implements Step {}

        record Softmax(int node, String op, Buf x, Buf mask, Buf y, long rows, int n, float scale, float softCap)
                implements Step {}

        record Norm(int node, String op, Buf x, Buf y, long rows, int n, float eps, boolean layer) implements Step {}

        /** Batched product; batch offsets (2 longs per batch, elements of a and b) at {@code metaOffset}. */
        record MatMul(int node, String op, Buf a, Buf b, Buf y, int batch, int m, int n, int k, boolean transposeB,
                long metaOffset) implements Step {}

        /** Device-to-device copy of {@code bytes} (an output that is an input or an alias of another value). */
        record Copy(int node, String op, Buf x, Buf y, long bytes) implements Step {}
    }

    /**
     * A lowered segment.
     *
     * @param steps        in stream order
     * @param meta         the metadata block (little-endian ints and longs), uploaded to scratch at {@code metaOffset}
     * @param metaOffset   where in scratch the metadata goes
     * @param scratchBytes scratch the segment needs, metadata included
     */
    public record Plan(List<Step> steps, byte[] meta, long metaOffset, long scratchBytes) {}

    private SegmentLowering() {}

    /**
     * Lowers {@code segment}.
     *
     * @throws SegmentExecutionException naming the node the GPU cannot run
     */
    public static Plan lower(SegmentSpec segment) {
        return new Lowerer(segment).run();
    }

    /** Why the GPU cannot run {@code segment} (the first node it cannot), or null when it can. */
    public static String cannotRun(SegmentSpec segment) {
        try {
            lower(segment);
            return null;
        } catch (SegmentExecutionException e) {
            return e.getMessage();
        }
    }

    private static final class Lowerer {
        private final SegmentSpec segment;
        private final OpGraph g;
        private final Buf[] values;
        private final List<Step> steps = new ArrayList<>();
        private final Meta meta = new Meta();
        private long scratch;
        private Node current;

        Lowerer(SegmentSpec segment) {
            this.segment = segment;
            this.g = segment.graph();
            this.values = new Buf[g.size()];
        }

        Plan run() {
            int nextInput = 0;
            for (Node n : g.nodes()) {
                current = n;
                String kind = WorkerCapabilities.opKind(n.op());
                if (!OPS.contains(kind)) {
                    throw fail("op " + kind + " has no GPU kernel (the GPU runs " + new java.util.TreeSet<>(OPS) + ")");
                }
                if (!n.dtype().equals(DType.F32)) {
                    throw fail("dtype " + n.dtype() + " (the GPU computes f32 values only)");
                }
                for (int in : n.inputs()) {
                    if (!g.node(in).dtype().equals(DType.F32)) {
                        throw fail("operand %" + in + " is " + g.node(in).dtype() + " (expected f32)");
                    }
                }
                if (n.shape().size() > Integer.MAX_VALUE) {
                    throw fail(n.shape().size() + " elements (the GPU kernels take at most 2^31 - 1 per tensor)");
                }
                if (n.op() instanceof Op.Input) {
                    values[n.id()] = new Buf.In(nextInput++);
                    continue;
                }
                lowerNode(n);
            }
            current = null;
            List<Integer> outs = g.outputs();
            for (int j = 0; j < outs.size(); j++) {
                Buf v = values[outs.get(j)];
                if (!(v instanceof Buf.Out o && o.index() == j)) {
                    Node n = g.node(outs.get(j));
                    steps.add(new Step.Copy(n.id(), n.op().name(), v, new Buf.Out(j), 4 * n.shape().size()));
                }
            }
            long metaOffset = align(scratch);
            byte[] bytes = meta.bytes();
            return new Plan(List.copyOf(steps), bytes, metaOffset, metaOffset + bytes.length);
        }

        private SegmentExecutionException fail(String why) {
            Node n = current;
            String where = n == null ? "" : " node %" + n.id() + " " + n.op().name() + " " + n.type() + ":";
            return new SegmentExecutionException(n == null ? -1 : n.id(), n == null ? "" : n.op().name(),
                    "segment " + segment.index() + ":" + where + " " + why, null);
        }

        /** The destination of computed node {@code n}: its output buffer when it is one, else fresh scratch. */
        private Buf dest(Node n) {
            int j = g.outputs().indexOf(n.id());
            return j >= 0 ? new Buf.Out(j) : fresh(4 * n.shape().size());
        }

        private Buf.Scratch fresh(long bytes) {
            long at = align(scratch);
            scratch = at + Math.max(bytes, 4);
            return new Buf.Scratch(at);
        }

        private Buf in(Node n, int k) {
            return values[n.input(k)];
        }

        private Shape shapeOf(Node n, int k) {
            return g.node(n.input(k)).shape();
        }

        private void lowerNode(Node n) {
            String name = n.op().name();
            long size = n.shape().size();
            int id = n.id();
            switch (n.op()) {
                case Op.Reshape r -> values[id] = in(n, 0);
                case Op.Cast c -> values[id] = in(n, 0);   // f32 to f32 (other casts are refused above)
                case Op.Full f -> {
                    Buf y = set(n);
                    steps.add(new Step.Fill(id, name, y, size, (float) f.value()));
                }
                case Op.CausalMask m -> {
                    Buf y = set(n);
                    steps.add(new Step.CausalMask(id, name, y, m.queries(), m.keys(), m.window()));
                }
                case Op.Unary u -> unary(n, u.fn().ordinal(), 0, 0);
                case Op.Pow p -> unary(n, 15, (float) p.exponent(), 0);
                case Op.Clamp c -> unary(n, 16, (float) c.min(), (float) c.max());
                case Op.Scale s -> unary(n, 17, (float) s.factor(), 0);
                case Op.Binary b -> {
                    Buf y = set(n);
                    Strided s = strided(n.shape(), broadcastStrides(shapeOf(n, 0), n.shape()),
                            broadcastStrides(shapeOf(n, 1), n.shape()));
                    steps.add(new Step.Binary(id, name, in(n, 0), in(n, 1), y, size, b.fn().ordinal(), s.metaOffset,
                            s.rank));
                }
                case Op.Expand e -> gather(n, broadcastStrides(shapeOf(n, 0), n.shape()));
                case Op.Permute p -> {
                    long[] inStrides = shapeOf(n, 0).strides();
                    long[] strides = new long[p.axes().size()];
                    for (int i = 0; i < strides.length; i++) {
                        strides[i] = inStrides[p.axes().get(i)];
                    }
                    gather(n, strides);
                }
                case Op.Slice s -> {
                    Shape xs = shapeOf(n, 0);
                    long inner = xs.sub(s.axis() + 1, xs.rank()).size();
                    long outer = xs.sub(0, s.axis()).size();
                    long cols = (long) (s.end() - s.start()) * inner;
                    Buf y = set(n);
                    steps.add(new Step.CopyRows(id, name, in(n, 0), s.start() * inner, xs.dim(s.axis()) * inner, y,
                            0, cols, outer, cols));
                }
                case Op.Pad p -> {
                    Shape xs = shapeOf(n, 0);
                    long inner = xs.sub(p.axis() + 1, xs.rank()).size();
                    long outer = xs.sub(0, p.axis()).size();
                    long cols = xs.dim(p.axis()) * inner;
                    Buf y = set(n);
                    steps.add(new Step.Fill(id, name, y, size, 0f));
                    steps.add(new Step.CopyRows(id, name, in(n, 0), 0, cols, y, p.before() * inner,
                            n.shape().dim(p.axis()) * inner, outer, cols));
                }
                case Op.Concat c -> {
                    Shape ys = n.shape();
                    long inner = ys.sub(c.axis() + 1, ys.rank()).size();
                    long outer = ys.sub(0, c.axis()).size();
                    long yStride = ys.dim(c.axis()) * inner;
                    Buf y = set(n);
                    long at = 0;
                    for (int k = 0; k < n.inputs().size(); k++) {
                        long cols = shapeOf(n, k).dim(c.axis()) * inner;
                        steps.add(new Step.CopyRows(id, name, in(n, k), 0, cols, y, at, yStride, outer, cols));
                        at += cols;
                    }
                }
                case Op.Reduce r -> reduce(n, r);
                case Op.Softmax s -> {
                    Buf mask = null;
                    if (n.inputs().size() > 1) {
                        mask = in(n, 1);
                        if (!shapeOf(n, 1).equals(n.shape())) {
                            // the kernel reads the mask row by row: broadcast it to the scores' shape first
                            Buf full = fresh(4 * size);
                            Strided st = strided(n.shape(), broadcastStrides(shapeOf(n, 1), n.shape()));
                            steps.add(new Step.Gather(id, name, mask, full, size, st.metaOffset, st.rank));
                            mask = full;
                        }
                    }
                    Buf y = set(n);
                    int cols = lastDim(n.shape());
                    steps.add(new Step.Softmax(id, name, in(n, 0), mask, y, rows(size, cols), cols, (float) s.scale(),
                            (float) s.softCap()));
                }
                case Op.RmsNorm r -> norm(n, r.eps(), false);
                case Op.LayerNorm l -> norm(n, l.eps(), true);
                case Op.MatMul m -> matmul(n, m);
                default -> throw fail("op " + WorkerCapabilities.opKind(n.op()) + " has no GPU kernel");
            }
        }

        private Buf set(Node n) {
            Buf y = dest(n);
            values[n.id()] = y;
            return y;
        }

        private void unary(Node n, int fn, float p0, float p1) {
            Buf y = set(n);
            steps.add(new Step.Unary(n.id(), n.op().name(), in(n, 0), y, n.shape().size(), fn, p0, p1));
        }

        private void gather(Node n, long[] strides) {
            Buf y = set(n);
            Strided s = strided(n.shape(), strides);
            steps.add(new Step.Gather(n.id(), n.op().name(), in(n, 0), y, n.shape().size(), s.metaOffset, s.rank));
        }

        private void norm(Node n, double eps, boolean layer) {
            Buf y = set(n);
            int cols = lastDim(n.shape());
            steps.add(new Step.Norm(n.id(), n.op().name(), in(n, 0), y, rows(n.shape().size(), cols), cols,
                    (float) eps, layer));
        }

        private void reduce(Node n, Op.Reduce r) {
            Shape xs = shapeOf(n, 0);
            int len = xs.dim(r.axis());
            long inner = xs.sub(r.axis() + 1, xs.rank()).size();
            long outer = xs.sub(0, r.axis()).size();
            Buf y = set(n);
            String name = n.op().name();
            if (outer == 1 && inner == 1 && len > ONE_BLOCK_SUM && r.fn() != Op.ReduceFn.MAX) {
                // a full reduction of a long vector: one block would sum it alone; partial sums over many blocks first
                Buf partial = fresh(4L * PARTIAL_BLOCKS);
                steps.add(new Step.SumPartial(n.id(), name, in(n, 0), partial, len, PARTIAL_BLOCKS));
                steps.add(new Step.Reduce(n.id(), name, partial, y, 1, PARTIAL_BLOCKS, 1, Op.ReduceFn.SUM.ordinal()));
                if (r.fn() == Op.ReduceFn.MEAN) {
                    steps.add(new Step.Unary(n.id(), name, y, y, 1, 17, (float) (1.0 / len), 0));
                }
                return;
            }
            steps.add(new Step.Reduce(n.id(), name, in(n, 0), y, outer, len, inner, r.fn().ordinal()));
        }

        private void matmul(Node n, Op.MatMul m) {
            Shape as = shapeOf(n, 0);
            Shape bs = shapeOf(n, 1);
            Shape ys = n.shape();
            int rank = ys.rank();
            int rows = ys.dim(rank - 2);
            int cols = ys.dim(rank - 1);
            int k = as.dim(as.rank() - 1);
            Shape batchShape = ys.sub(0, rank - 2);
            long batch = batchShape.size();
            if (batch > MAX_BATCH || (rows + 63) / 64 > MAX_BATCH) {
                throw fail("batch " + batch + " x " + rows + " rows (the matmul kernel takes a batch and row tiles of"
                        + " at most " + MAX_BATCH + ")");
            }
            long[] aStrides = batchStrides(as, batchShape, (long) as.dim(as.rank() - 2) * k);
            long[] bStrides = batchStrides(bs, batchShape, (long) bs.dim(bs.rank() - 2) * bs.dim(bs.rank() - 1));
            long[] offsets = new long[(int) (2 * batch)];
            int[] bd = batchShape.dims();
            for (int b = 0; b < batch; b++) {
                long rest = b;
                long ao = 0;
                long bo = 0;
                for (int d = bd.length - 1; d >= 0; d--) {
                    long idx = rest % bd[d];
                    rest /= bd[d];
                    ao += idx * aStrides[d];
                    bo += idx * bStrides[d];
                }
                offsets[2 * b] = ao;
                offsets[2 * b + 1] = bo;
            }
            long at = meta.longs(offsets);
            Buf y = set(n);
            steps.add(new Step.MatMul(n.id(), n.op().name(), in(n, 0), in(n, 1), y, (int) batch, rows, cols, k,
                    m.transposeB(), at));
        }

        /** Element strides of operand {@code s}'s batch dimensions seen through the output's batch shape. */
        private static long[] batchStrides(Shape s, Shape batchShape, long matrix) {
            int r = batchShape.rank();
            Shape own = s.sub(0, s.rank() - 2);
            long[] strides = new long[r];
            long step = matrix;
            for (int d = own.rank() - 1; d >= 0; d--) {
                int out = d + r - own.rank();
                strides[out] = own.dim(d) == 1 ? 0 : step;
                step *= own.dim(d);
            }
            return strides;
        }

        private record Strided(long metaOffset, int rank) {}

        /**
         * Writes {@code dims} and each operand's strides into the metadata, after dropping size-1 dimensions and
         * merging neighbours that every operand reads contiguously (a same-shape operand becomes rank 1).
         */
        private Strided strided(Shape shape, long[]... operandStrides) {
            int[] dims = shape.dims();
            List<long[]> merged = new ArrayList<>();   // [dim, stride_0, stride_1, ...] from the last axis back
            for (int d = dims.length - 1; d >= 0; d--) {
                if (dims[d] == 1) {
                    continue;
                }
                long[] cur = new long[1 + operandStrides.length];
                cur[0] = dims[d];
                for (int k = 0; k < operandStrides.length; k++) {
                    cur[1 + k] = operandStrides[k][d];
                }
                if (!merged.isEmpty()) {
                    long[] inner = merged.getLast();
                    boolean contiguous = true;
                    for (int k = 0; k < operandStrides.length; k++) {
                        contiguous &= cur[1 + k] == inner[1 + k] * inner[0];
                    }
                    if (contiguous && inner[0] * cur[0] <= Integer.MAX_VALUE) {
                        inner[0] *= cur[0];
                        continue;
                    }
                }
                merged.add(cur);
            }
            if (merged.isEmpty()) {
                long[] one = new long[1 + operandStrides.length];
                one[0] = 1;
                merged.add(one);
            }
            int rank = merged.size();
            if (rank > MAX_RANK) {
                throw fail("a strided read of rank " + rank + " (the kernels take at most " + MAX_RANK + ")");
            }
            int[] words = new int[rank * (1 + operandStrides.length)];
            for (int d = 0; d < rank; d++) {
                long[] m = merged.get(rank - 1 - d);
                for (int k = 0; k <= operandStrides.length; k++) {
                    if (m[k] > Integer.MAX_VALUE) {
                        throw fail("a stride of " + m[k] + " elements (the kernels take int strides)");
                    }
                    words[k * rank + d] = (int) m[k];
                }
            }
            return new Strided(meta.ints(words), rank);
        }
    }

    /** Strides of {@code in} (right-aligned) read through {@code out}'s dimensions: 0 where {@code in} broadcasts. */
    static long[] broadcastStrides(Shape in, Shape out) {
        int rank = out.rank();
        int offset = rank - in.rank();
        long[] own = in.strides();
        long[] strides = new long[rank];
        for (int d = offset; d < rank; d++) {
            strides[d] = in.dim(d - offset) == 1 ? 0 : own[d - offset];
        }
        return strides;
    }

    private static int lastDim(Shape s) {
        return s.rank() == 0 ? 1 : s.dim(s.rank() - 1);
    }

    private static long rows(long size, int cols) {
        return cols == 0 ? 0 : size / cols;
    }

    static long align(long bytes) {
        return (bytes + ALIGN - 1) / ALIGN * ALIGN;
    }

    /** The metadata block: ints and longs, little-endian, each array 8-byte aligned. */
    private static final class Meta {
        private byte[] bytes = new byte[256];
        private int size;

        long ints(int[] v) {
            int at = reserve(4L * v.length);
            for (int i = 0; i < v.length; i++) {
                put(at + 4 * i, v[i], 4);
            }
            return at;
        }

        long longs(long[] v) {
            int at = reserve(8L * v.length);
            for (int i = 0; i < v.length; i++) {
                put(at + 8 * i, v[i], 8);
            }
            return at;
        }

        private int reserve(long n) {
            int at = (size + 7) & ~7;
            if (at + n > Integer.MAX_VALUE - 8) {
                throw new IllegalStateException("segment metadata over 2 GiB");
            }
            if (at + n > bytes.length) {
                bytes = Arrays.copyOf(bytes, (int) Math.max(at + n, 2L * bytes.length));
            }
            size = (int) (at + n);
            return at;
        }

        private void put(int at, long v, int width) {
            for (int i = 0; i < width; i++) {
                bytes[at + i] = (byte) (v >>> (8 * i));
            }
        }

        byte[] bytes() {
            return Arrays.copyOf(bytes, Math.max(size, 8));
        }
    }
}
