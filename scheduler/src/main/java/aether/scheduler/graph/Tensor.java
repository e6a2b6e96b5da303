package aether.scheduler.graph;

import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.scheduler.autograd.Autograd;
import aether.scheduler.autograd.Gradients;
import aether.scheduler.exec.GraphExecutor;
import java.util.ArrayList;
import java.util.List;

/**
 * A handle on one node of a {@link Graph}. Every method appends an op and returns its result; shapes and dtypes are
 * inferred and checked at once. Axes may be negative ({@code -1} is the last). Equality is node identity.
 */
public final class Tensor {

    private final Graph graph;
    private final int id;

    Tensor(Graph graph, int id) {
        this.graph = graph;
        this.id = id;
    }

    public Graph graph() {
        return graph;
    }

    public int id() {
        return id;
    }

    public Node node() {
        return graph.node(id);
    }

    public Shape shape() {
        return node().shape();
    }

    public DType dtype() {
        return node().dtype();
    }

    public int rank() {
        return shape().rank();
    }

    private Tensor op(Op op, Tensor... others) {
        Tensor[] in = new Tensor[others.length + 1];
        in[0] = this;
        System.arraycopy(others, 0, in, 1, others.length);
        return graph.apply(op, in);
    }

    private Tensor constant(double v) {
        return graph.scalar(v, dtype());
    }

    // ---- elementwise ---------------------------------------------------------------------------------------------

    public Tensor add(Tensor o) { return op(new Op.Binary(Op.BinaryFn.ADD), o); }
    public Tensor sub(Tensor o) { return op(new Op.Binary(Op.BinaryFn.SUB), o); }
    public Tensor mul(Tensor o) { return op(new Op.Binary(Op.BinaryFn.MUL), o); }
    public Tensor div(Tensor o) { return op(new Op.Binary(Op.BinaryFn.DIV), o); }
    public Tensor pow(Tensor exponent) { return op(new Op.Binary(Op.BinaryFn.POW), exponent); }
    /** 1 where equal, else 0 (not differentiable). */
    public Tensor eq(Tensor o) { return op(new Op.Binary(Op.BinaryFn.EQ), o); }

    public Tensor add(double v) { return add(constant(v)); }
    public Tensor sub(double v) { return sub(constant(v)); }
    public Tensor mul(double v) { return scale(v); }
    public Tensor div(double v) { return div(constant(v)); }

    public Tensor neg() { return unary(Op.UnaryFn.NEG); }
    public Tensor abs() { return unary(Op.UnaryFn.ABS); }
    public Tensor exp() { return unary(Op.UnaryFn.EXP); }
    public Tensor log() { return unary(Op.UnaryFn.LOG); }
    public Tensor sqrt() { return unary(Op.UnaryFn.SQRT); }
    public Tensor rsqrt() { return unary(Op.UnaryFn.RSQRT); }
    public Tensor tanh() { return unary(Op.UnaryFn.TANH); }
    public Tensor sigmoid() { return unary(Op.UnaryFn.SIGMOID); }
    public Tensor relu() { return unary(Op.UnaryFn.RELU); }
    /** ggml's gelu (tanh approximation). */
    public Tensor gelu() { return unary(Op.UnaryFn.GELU); }
    public Tensor silu() { return unary(Op.UnaryFn.SILU); }

    public Tensor unary(Op.UnaryFn fn) { return op(new Op.Unary(fn)); }
    public Tensor pow(double exponent) { return op(new Op.Pow(exponent)); }
    public Tensor clamp(double min, double max) { return op(new Op.Clamp(min, max)); }
    public Tensor scale(double factor) { return op(new Op.Scale(factor)); }
    public Tensor cast(DType to) { return op(new Op.Cast(to)); }

    // ---- reductions ----------------------------------------------------------------------------------------------

    public Tensor sum(int axis) { return sum(axis, false); }
    public Tensor sum(int axis, boolean keepDims) { return reduce(Op.ReduceFn.SUM, axis, keepDims); }
    public Tensor mean(int axis) { return mean(axis, false); }
    public Tensor mean(int axis, boolean keepDims) { return reduce(Op.ReduceFn.MEAN, axis, keepDims); }
    public Tensor max(int axis) { return max(axis, false); }
    public Tensor max(int axis, boolean keepDims) { return reduce(Op.ReduceFn.MAX, axis, keepDims); }

    public Tensor argmax(int axis) { return argmax(axis, false); }

    public Tensor argmax(int axis, boolean keepDims) {
        return op(new Op.ArgMax(normalize("argmax", axis), keepDims));
    }

    private Tensor reduce(Op.ReduceFn fn, int axis, boolean keepDims) {
        return op(new Op.Reduce(fn, normalize(fn.name().toLowerCase(java.util.Locale.ROOT), axis), keepDims));
    }

    /** Sum of every element, a scalar (shape []). */
    public Tensor sumAll() {
        return flatten().sum(0);
    }

    /** Mean of every element, a scalar. */
    public Tensor meanAll() {
        return flatten().mean(0);
    }

    private Tensor flatten() {
        return reshape(Math.toIntExact(shape().size()));
    }

    // ---- linear algebra and nn -----------------------------------------------------------------------------------

    /** this[..., m, k] x b[..., k, n] with broadcast batch dimensions. */
    public Tensor matmul(Tensor b) { return op(new Op.MatMul(false), b); }

    /** this[..., m, k] x b[..., n, k]^T: b in ggml weight layout (one row per output), quantized or not. */
    public Tensor matmulT(Tensor b) { return op(new Op.MatMul(true), b); }

    /** A linear layer without bias: this x weight^T, weight[out, in]. */
    public Tensor linear(Tensor weight) { return matmulT(weight); }

    public Tensor linear(Tensor weight, Tensor bias) { return matmulT(weight).add(bias); }

    /** Softmax along {@code axis}. */
    public Tensor softmax(int axis) {
        int a = normalize("softmax", axis);
        if (a == rank() - 1) {
            return op(new Op.Softmax(1, 0));
        }
        int[] perm = new int[rank()];
        for (int i = 0; i < perm.length; i++) {
            perm[i] = i;
        }
        perm[a] = rank() - 1;
        perm[rank() - 1] = a;
        return permute(perm).softmax(-1).permute(perm);
    }

    /** softmax(cap(this * scale) + mask) over the last axis; {@code mask} may be null, {@code softCap} 0 is off. */
    public Tensor softmax(Tensor mask, double scale, double softCap) {
        Op.Softmax op = new Op.Softmax(scale, softCap);
        return mask == null ? op(op) : op(op, mask);
    }

    public Tensor rmsNorm(double eps) { return op(new Op.RmsNorm(eps)); }

    public Tensor rmsNorm(Tensor weight, double eps) { return rmsNorm(eps).mul(weight); }

    public Tensor layerNorm(double eps) { return op(new Op.LayerNorm(eps)); }

    public Tensor layerNorm(Tensor weight, Tensor bias, double eps) { return layerNorm(eps).mul(weight).add(bias); }

    /** Rotary embedding of this[..., tokens, heads, headDim] at I32 {@code positions[tokens]}. */
    public Tensor rope(Tensor positions, Op.RopeMode mode, int nRot, double freqBase, double freqScale) {
        return op(new Op.Rope(mode, nRot, freqBase, freqScale), positions);
    }

    /** {@link #rope} with per-pair frequency factors {@code freqFactors[nRot/2]} dividing each angle (Llama 3). */
    public Tensor rope(Tensor positions, Tensor freqFactors, Op.RopeMode mode, int nRot, double freqBase,
            double freqScale) {
        return op(new Op.Rope(mode, nRot, freqBase, freqScale), positions, freqFactors);
    }

    /** Rows of this table[rows, cols] picked by I32 {@code ids} (embedding lookup). */
    public Tensor getRows(Tensor ids) { return op(new Op.GetRows(), ids); }

    /**
     * This KV cache [slots, width] with {@code rows} f32[tokens, width] written at cache rows {@code slots}
     * I32[tokens] ({@link Op.KvStore}); read the result, not this tensor, to see the new rows.
     */
    public Tensor kvStore(Tensor rows, Tensor slots) { return op(new Op.KvStore(), rows, slots); }

    /**
     * Causal attention of these queries f32[tokens, heads, d] over paged caches (results of {@link #kvStore}), see
     * {@link Op.PagedAttention}.
     */
    public Tensor pagedAttention(Tensor kCache, Tensor vCache, Tensor positions, Tensor blockTable, int kvHeads,
            double scale, int window, double softCap, int blockSize) {
        return op(new Op.PagedAttention(kvHeads, scale, window, softCap, blockSize), kCache, vCache, positions,
                blockTable);
    }

    /**
     * Causal scaled dot-product attention with this as q[..., hq, tq, d], grouped-query k/v[..., hkv, tk, *] and an
     * optional sliding window (0 = unlimited). See {@link Op.Attention}.
     */
    public Tensor attention(Tensor k, Tensor v, double scale, int window) {
        return attention(k, v, scale, window, 0);
    }

    /** {@link #attention(Tensor, Tensor, double, int)} with soft-capped scores (Gemma 2); {@code softCap} 0 is off. */
    public Tensor attention(Tensor k, Tensor v, double scale, int window, double softCap) {
        return op(new Op.Attention(scale, window, softCap), k, v);
    }

    // ---- layout --------------------------------------------------------------------------------------------------

    /** New dimensions over the same row-major elements; one dimension may be -1 (inferred). */
    public Tensor reshape(int... dims) {
        int[] d = dims.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < d.length; i++) {
            if (d[i] == -1 && infer < 0) {
                infer = i;
            } else {
                if (d[i] < 0) {
                    throw new IllegalArgumentException("reshape(" + shape() + " -> " + java.util.Arrays.toString(dims)
                            + "): only one dimension may be -1, the others >= 0");
                }
                known *= d[i];
            }
        }
        if (infer >= 0) {
            long total = shape().size();
            if (known == 0 || total % known != 0) {
                throw new IllegalArgumentException("reshape(" + shape() + " -> " + java.util.Arrays.toString(dims)
                        + "): " + total + " elements do not divide into the known dimensions");
            }
            d[infer] = Math.toIntExact(total / known);
        }
        return reshape(Shape.of(d));
    }

    public Tensor reshape(Shape shape) {
        return shape.equals(shape()) ? this : op(new Op.Reshape(shape));
    }

    /** Same as {@link #reshape}: values, not memory, are what a graph describes. */
    public Tensor view(int... dims) { return reshape(dims); }

    public Tensor permute(int... axes) {
        List<Integer> a = new ArrayList<>(axes.length);
        for (int ax : axes) {
            a.add(axes.length == rank() ? normalize("permute", ax) : ax);
        }
        return op(new Op.Permute(a));
    }

    public Tensor transpose(int axis0, int axis1) {
        int a = normalize("transpose", axis0);
        int b = normalize("transpose", axis1);
        int[] perm = new int[rank()];
        for (int i = 0; i < perm.length; i++) {
            perm[i] = i;
        }
        perm[a] = b;
        perm[b] = a;
        return permute(perm);
    }

    /**
     * This tensor: graph values have no memory layout of their own (every op yields a row-major result); choosing
     * strided views and where copies go is the compiler's layout pass.
     */
    public Tensor contiguous() { return this; }

    public Tensor expand(Shape shape) {
        return shape.equals(shape()) ? this : op(new Op.Expand(shape));
    }

    public Tensor expand(int... dims) { return expand(Shape.of(dims)); }

    /** This tensor followed by {@code others} along {@code axis}. */
    public Tensor concat(int axis, Tensor... others) {
        return op(new Op.Concat(normalize("concat", axis)), others);
    }

    public Tensor slice(int axis, int start, int end) {
        return op(new Op.Slice(normalize("slice", axis), start, end));
    }

    public Tensor pad(int axis, int before, int after) {
        return op(new Op.Pad(normalize("pad", axis), before, after));
    }

    private int normalize(String opName, int axis) {
        int r = rank();
        int a = axis < 0 ? axis + r : axis;
        if (a < 0 || a >= r) {
            throw new IllegalArgumentException(opName + "(" + node().type() + "): axis " + axis
                    + " out of range (expected: " + -r + ".." + (r - 1) + ")");
        }
        return a;
    }

    // ---- autograd and values -------------------------------------------------------------------------------------

    /** Appends the reverse-mode gradient graph of this scalar with respect to every floating leaf. */
    public Gradients backward() {
        return Autograd.backward(this);
    }

    public float[] toFloatArray(GraphExecutor executor) {
        return graph.evaluate(executor, this).floats(this);
    }

    public double[] toDoubleArray(GraphExecutor executor) {
        return graph.evaluate(executor, this).doubles(this);
    }

    public int[] toIntArray(GraphExecutor executor) {
        return graph.evaluate(executor, this).value(this).toIntArray();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Tensor t && t.graph == graph && t.id == id;
    }

    @Override
    public int hashCode() {
        return id * 31 + System.identityHashCode(graph);
    }

    @Override
    public String toString() {
        return "%" + id + " " + node().op().name() + " " + node().type();
    }
}
