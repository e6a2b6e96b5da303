package aether.runtime.ir;

import java.util.List;
import java.util.stream.Collectors;

/**
 * Result type of every {@link Op} from its operand types. A broken rule is an {@link IllegalArgumentException} whose
 * message names the op, the operand types and the rule, e.g. {@code matmul(f32[2, 3], f32[4, 5]): inner dimensions
 * must agree: a[..., m, k] x b[..., k, n] needs a.k == b.k (found 3 and 4)}.
 */
public final class TypeInference {

    private TypeInference() {}

    public static TensorType infer(Op op, List<TensorType> in) {
        return switch (op) {
            case Op.Input i -> {
                TensorType t = leaf(op, in, i.type());
                if (t.dtype().isQuantized() && (t.shape().rank() != 2
                        || t.shape().dim(1) % t.dtype().ggml().blockSize() != 0)) {
                    throw fail(op, in, "a " + t.dtype() + " input is a 2-D weight [rows, cols] of whole blocks of "
                            + t.dtype().ggml().blockSize() + " (found " + t + ")");
                }
                yield t;
            }
            case Op.Full f -> {
                if (f.type().dtype().isQuantized()) {
                    throw fail(op, in, "full has a floating or integer dtype (found " + f.type().dtype() + ")");
                }
                yield leaf(op, in, f.type());
            }
            case Op.CausalMask m -> causalMask(m, in);
            case Op.Unary u -> elementwise(op, in);
            case Op.Pow p -> elementwise(op, in);
            case Op.Clamp c -> {
                if (!(c.min() <= c.max())) {
                    throw fail(op, in, "clamp needs min <= max (found min=" + c.min() + ", max=" + c.max() + ")");
                }
                yield elementwise(op, in);
            }
            case Op.Scale s -> elementwise(op, in);
            case Op.Binary b -> binary(op, in);
            case Op.Cast c -> {
                arity(op, in, 1);
                requireFloat(op, in, 0, "cast converts between floating types (f32, f16, bf16, f64)");
                if (!c.to().isFloat()) {
                    throw fail(op, in, "cast converts between floating types (f32, f16, bf16, f64); target is "
                            + c.to());
                }
                yield new TensorType(in.get(0).shape(), c.to());
            }
            case Op.Reduce r -> reduce(op, in, r.axis(), r.keepDims(), in.isEmpty() ? null : in.get(0).dtype());
            case Op.ArgMax a -> reduce(op, in, a.axis(), a.keepDims(), DType.I32);
            case Op.MatMul m -> matmul(m, in);
            case Op.Softmax s -> softmax(s, in);
            case Op.RmsNorm n -> norm(op, in, n.eps());
            case Op.LayerNorm n -> norm(op, in, n.eps());
            case Op.Rope r -> rope(r, in);
            case Op.GetRows g -> getRows(op, in);
            case Op.ScatterAddRows s -> scatterAddRows(s, in);
            case Op.Attention a -> attention(a, in);
            case Op.KvStore k -> kvStore(k, in);
            case Op.PagedAttention a -> pagedAttention(a, in);
            case Op.Reshape r -> {
                arity(op, in, 1);
                if (r.shape().size() != in.get(0).shape().size()) {
                    throw fail(op, in, "reshape keeps the element count: " + in.get(0).shape().size() + " elements"
                            + " cannot become " + r.shape() + " (" + r.shape().size() + " elements)");
                }
                requireNotQuantized(op, in, 0);
                yield new TensorType(r.shape(), in.get(0).dtype());
            }
            case Op.Permute p -> permute(p, in);
            case Op.Expand e -> {
                arity(op, in, 1);
                requireNotQuantized(op, in, 0);
                if (!in.get(0).shape().broadcastsTo(e.shape())) {
                    throw fail(op, in, "expand needs the operand to broadcast to " + e.shape()
                            + " (NumPy rules: align last dimensions; each size equal or 1)");
                }
                yield new TensorType(e.shape(), in.get(0).dtype());
            }
            case Op.Concat c -> concat(c, in);
            case Op.Slice s -> {
                arity(op, in, 1);
                requireNotQuantized(op, in, 0);
                Shape x = in.get(0).shape();
                axis(op, in, s.axis(), x.rank());
                if (s.start() < 0 || s.end() > x.dim(s.axis()) || s.start() > s.end()) {
                    throw fail(op, in, "slice needs 0 <= start <= end <= dim " + s.axis() + " (" + x.dim(s.axis())
                            + "); found start=" + s.start() + ", end=" + s.end());
                }
                yield new TensorType(x.with(s.axis(), s.end() - s.start()), in.get(0).dtype());
            }
            case Op.Pad p -> {
                arity(op, in, 1);
                requireNotQuantized(op, in, 0);
                Shape x = in.get(0).shape();
                axis(op, in, p.axis(), x.rank());
                if (p.before() < 0 || p.after() < 0) {
                    throw fail(op, in, "pad sizes must be >= 0 (found before=" + p.before() + ", after="
                            + p.after() + ")");
                }
                yield new TensorType(x.with(p.axis(), Math.addExact(x.dim(p.axis()), p.before() + p.after())),
                        in.get(0).dtype());
            }
        };
    }

    private static TensorType leaf(Op op, List<TensorType> in, TensorType type) {
        arity(op, in, 0);
        return type;
    }

    private static TensorType causalMask(Op.CausalMask m, List<TensorType> in) {
        arity(m, in, 0);
        if (m.queries() < 0 || m.keys() < m.queries() || m.window() < 0) {
            throw fail(m, in, "causal_mask needs 0 <= queries <= keys and window >= 0 (found queries="
                    + m.queries() + ", keys=" + m.keys() + ", window=" + m.window() + ")");
        }
        if (!m.dtype().isFloat()) {
            throw fail(m, in, "causal_mask has a floating dtype (found " + m.dtype() + ")");
        }
        return new TensorType(Shape.of(m.queries(), m.keys()), m.dtype());
    }

    private static TensorType elementwise(Op op, List<TensorType> in) {
        arity(op, in, 1);
        requireFloat(op, in, 0, op.name() + " works on floating types (f32, f16, bf16, f64)");
        return in.get(0);
    }

    private static TensorType binary(Op op, List<TensorType> in) {
        arity(op, in, 2);
        requireFloat(op, in, 0, op.name() + " works on floating types (f32, f16, bf16, f64)");
        requireFloat(op, in, 1, op.name() + " works on floating types (f32, f16, bf16, f64)");
        if (!in.get(0).dtype().equals(in.get(1).dtype())) {
            throw fail(op, in, "elementwise operands share one dtype (cast one first)");
        }
        Shape out = Shape.broadcast(in.get(0).shape(), in.get(1).shape());
        if (out == null) {
            throw fail(op, in, "shapes must broadcast (NumPy rules: align last dimensions; each pair equal or"
                    + " one of them 1)");
        }
        return new TensorType(out, in.get(0).dtype());
    }

    private static TensorType reduce(Op op, List<TensorType> in, int axis, boolean keepDims, DType outType) {
        arity(op, in, 1);
        requireFloat(op, in, 0, op.name() + " reduces floating types");
        Shape x = in.get(0).shape();
        axis(op, in, axis, x.rank());
        if (x.dim(axis) == 0 && !(op instanceof Op.Reduce r && r.fn() == Op.ReduceFn.SUM)) {
            throw fail(op, in, op.name() + " needs a non-empty axis " + axis);
        }
        return new TensorType(keepDims ? x.with(axis, 1) : x.without(axis), outType);
    }

    private static TensorType matmul(Op.MatMul m, List<TensorType> in) {
        arity(m, in, 2);
        TensorType a = in.get(0);
        TensorType b = in.get(1);
        requireFloat(m, in, 0, "the left operand of matmul is floating (f32, f16, bf16, f64)");
        if (b.dtype().isInteger()) {
            throw fail(m, in, "the right operand of matmul is floating or a quantized weight");
        }
        if (b.dtype().isFloat() && !b.dtype().equals(a.dtype()) && !weightType(b.dtype())) {
            throw fail(m, in, "matmul operands share one dtype unless the right one is a stored weight type"
                    + " (f16, bf16 or a block type)");
        }
        if (a.shape().rank() < 2 || b.shape().rank() < 2) {
            throw fail(m, in, "matmul operands have rank >= 2: a[..., m, k] x b[..., k, n]");
        }
        if (b.dtype().isQuantized()) {
            if (b.shape().rank() != 2) {
                throw fail(m, in, "a quantized right operand of matmul is a 2-D weight [rows, cols]");
            }
            int rowLength = b.shape().dim(1);
            if (rowLength % b.dtype().ggml().blockSize() != 0) {
                throw fail(m, in, "a " + b.dtype() + " weight row holds whole blocks of "
                        + b.dtype().ggml().blockSize() + " (found row length " + rowLength + ")");
            }
        }
        Shape as = a.shape();
        Shape bs = b.shape();
        int ra = as.rank();
        int rb = bs.rank();
        int mDim = as.dim(ra - 2);
        int k = as.dim(ra - 1);
        int kb = m.transposeB() ? bs.dim(rb - 1) : bs.dim(rb - 2);
        int n = m.transposeB() ? bs.dim(rb - 2) : bs.dim(rb - 1);
        if (k != kb) {
            throw fail(m, in, m.transposeB()
                    ? "inner dimensions must agree: a[..., m, k] x b[..., n, k]^T needs a.k == b.k (found " + k
                            + " and " + kb + ")"
                    : "inner dimensions must agree: a[..., m, k] x b[..., k, n] needs a.k == b.k (found " + k
                            + " and " + kb + ")");
        }
        Shape batch = Shape.broadcast(as.sub(0, ra - 2), bs.sub(0, rb - 2));
        if (batch == null) {
            throw fail(m, in, "batch dimensions (all but the last two) must broadcast");
        }
        int[] bd = batch.dims();
        int[] out = new int[bd.length + 2];
        System.arraycopy(bd, 0, out, 0, bd.length);
        out[bd.length] = mDim;
        out[bd.length + 1] = n;
        return new TensorType(Shape.of(out), a.dtype());
    }

    private static boolean weightType(DType t) {
        return t.isQuantized() || t.equals(DType.F16) || t.equals(DType.BF16) || t.equals(DType.F32);
    }

    private static TensorType softmax(Op.Softmax s, List<TensorType> in) {
        if (in.size() != 1 && in.size() != 2) {
            throw fail(s, in, "softmax takes x and an optional mask");
        }
        requireFloat(s, in, 0, "softmax works on floating types");
        if (in.get(0).shape().rank() < 1) {
            throw fail(s, in, "softmax needs rank >= 1 (it normalizes the last axis)");
        }
        if (!(s.softCap() >= 0) || !Double.isFinite(s.scale())) {
            throw fail(s, in, "softmax needs a finite scale and softCap >= 0 (0 = off)");
        }
        if (in.size() == 2) {
            if (!in.get(1).dtype().equals(in.get(0).dtype())) {
                throw fail(s, in, "the softmax mask has x's dtype");
            }
            if (!in.get(1).shape().broadcastsTo(in.get(0).shape())) {
                throw fail(s, in, "the softmax mask must broadcast to x's shape");
            }
        }
        return in.get(0);
    }

    private static TensorType norm(Op op, List<TensorType> in, double eps) {
        arity(op, in, 1);
        requireFloat(op, in, 0, op.name() + " works on floating types");
        if (in.get(0).shape().rank() < 1) {
            throw fail(op, in, op.name() + " needs rank >= 1 (it normalizes the last axis)");
        }
        if (!(eps >= 0) || !Double.isFinite(eps)) {
            throw fail(op, in, op.name() + " needs a finite eps >= 0 (found " + eps + ")");
        }
        return in.get(0);
    }

    private static TensorType rope(Op.Rope r, List<TensorType> in) {
        if (in.size() != 2 && in.size() != 3) {
            throw fail(r, in, "rope takes x, positions and optional frequency factors");
        }
        requireFloat(r, in, 0, "rope rotates floating values");
        TensorType x = in.get(0);
        TensorType pos = in.get(1);
        if (x.shape().rank() < 3) {
            throw fail(r, in, "rope needs x[..., tokens, heads, headDim] (rank >= 3)");
        }
        if (!pos.dtype().isInteger() || pos.shape().rank() != 1) {
            throw fail(r, in, "rope positions are I32[tokens]");
        }
        int tokens = x.shape().dim(-3);
        if (pos.shape().dim(0) != tokens) {
            throw fail(r, in, "rope needs one position per token: x has " + tokens + " tokens (dim -3), positions "
                    + pos.shape().dim(0));
        }
        int headDim = x.shape().dim(-1);
        if (r.nRot() <= 0 || r.nRot() % 2 != 0 || r.nRot() > headDim) {
            throw fail(r, in, "rope needs an even nRot in 2..headDim (" + headDim + "); found " + r.nRot());
        }
        if (!(r.freqBase() > 0) || !Double.isFinite(r.freqBase()) || r.freqScale() == 0
                || !Double.isFinite(r.freqScale())) {
            throw fail(r, in, "rope needs freqBase > 0 and a finite non-zero freqScale (found " + r.freqBase()
                    + ", " + r.freqScale() + ")");
        }
        if (in.size() == 3 && (!in.get(2).dtype().isFloat() || !in.get(2).shape().equals(Shape.of(r.nRot() / 2)))) {
            throw fail(r, in, "rope frequency factors are floating [nRot/2] = [" + r.nRot() / 2 + "]");
        }
        return x;
    }

    private static TensorType getRows(Op op, List<TensorType> in) {
        arity(op, in, 2);
        TensorType table = in.get(0);
        TensorType ids = in.get(1);
        if (table.shape().rank() != 2 || table.dtype().isInteger()) {
            throw fail(op, in, "get_rows reads a 2-D table[rows, cols] of floats or a quantized weight");
        }
        if (!ids.dtype().isInteger()) {
            throw fail(op, in, "get_rows ids are I32");
        }
        int[] id = ids.shape().dims();
        int[] out = new int[id.length + 1];
        System.arraycopy(id, 0, out, 0, id.length);
        out[id.length] = table.shape().dim(1);
        DType dt = table.dtype().isQuantized() || !table.dtype().isFloat() ? DType.F32 : table.dtype();
        return new TensorType(Shape.of(out), dt);
    }

    private static TensorType scatterAddRows(Op.ScatterAddRows s, List<TensorType> in) {
        arity(s, in, 2);
        requireFloat(s, in, 0, "scatter_add_rows adds floating rows");
        TensorType src = in.get(0);
        TensorType ids = in.get(1);
        if (!ids.dtype().isInteger()) {
            throw fail(s, in, "scatter_add_rows ids are I32");
        }
        int[] sd = src.shape().dims();
        int[] id = ids.shape().dims();
        boolean ok = sd.length == id.length + 1;
        for (int i = 0; ok && i < id.length; i++) {
            ok = sd[i] == id[i];
        }
        if (!ok || s.rows() < 0) {
            throw fail(s, in, "scatter_add_rows needs src[..., cols] with the ids' shape as its leading dimensions"
                    + " and rows >= 0");
        }
        return new TensorType(Shape.of(s.rows(), sd[sd.length - 1]), src.dtype());
    }

    private static TensorType attention(Op.Attention a, List<TensorType> in) {
        arity(a, in, 3);
        for (int i = 0; i < 3; i++) {
            requireFloat(a, in, i, "attention works on floating types");
        }
        if (!in.get(1).dtype().equals(in.get(0).dtype()) || !in.get(2).dtype().equals(in.get(0).dtype())) {
            throw fail(a, in, "q, k and v share one dtype");
        }
        Shape q = in.get(0).shape();
        Shape k = in.get(1).shape();
        Shape v = in.get(2).shape();
        if (q.rank() < 3 || k.rank() != q.rank() || v.rank() != q.rank()) {
            throw fail(a, in, "attention takes q[..., hq, tq, d], k[..., hkv, tk, d], v[..., hkv, tk, dv] of one"
                    + " rank >= 3");
        }
        int r = q.rank();
        if (!q.sub(0, r - 3).equals(k.sub(0, r - 3)) || !q.sub(0, r - 3).equals(v.sub(0, r - 3))) {
            throw fail(a, in, "attention batch dimensions of q, k and v must be equal");
        }
        int hq = q.dim(r - 3);
        int hkv = k.dim(r - 3);
        if (hkv == 0 || hq % hkv != 0 || v.dim(r - 3) != hkv) {
            throw fail(a, in, "grouped-query attention needs hq a multiple of hkv and v with k's heads (found hq="
                    + hq + ", hkv=" + hkv + ", v heads=" + v.dim(r - 3) + ")");
        }
        if (q.dim(r - 1) != k.dim(r - 1)) {
            throw fail(a, in, "q and k head sizes must agree (found " + q.dim(r - 1) + " and " + k.dim(r - 1) + ")");
        }
        if (k.dim(r - 2) != v.dim(r - 2)) {
            throw fail(a, in, "k and v have one entry per key (found " + k.dim(r - 2) + " and " + v.dim(r - 2) + ")");
        }
        if (k.dim(r - 2) < q.dim(r - 2)) {
            throw fail(a, in, "causal attention needs at least as many keys as queries (found tk=" + k.dim(r - 2)
                    + ", tq=" + q.dim(r - 2) + ")");
        }
        if (a.window() < 0 || !Double.isFinite(a.scale()) || !(a.softCap() >= 0) || Double.isInfinite(a.softCap())) {
            throw fail(a, in, "attention needs window >= 0 (0 = unlimited), a finite scale and a finite softCap >= 0"
                    + " (0 = off)");
        }
        return new TensorType(q.with(r - 1, v.dim(r - 1)), in.get(0).dtype());
    }

    private static TensorType kvStore(Op.KvStore op, List<TensorType> in) {
        arity(op, in, 3);
        TensorType cache = in.get(0);
        DType ct = cache.dtype();
        if (!(ct.equals(DType.F32) || ct.equals(DType.F16) || ct.ggml() == aether.runtime.tensor.GgmlType.Q8_0)
                || cache.shape().rank() != 2) {
            throw fail(op, in, "kv_store writes a cache[slots, width] of f32, f16 or q8_0");
        }
        int width = cache.shape().dim(1);
        Shape rows = in.get(1).shape();
        if (!in.get(1).dtype().equals(DType.F32) || rows.rank() != 2 || rows.dim(1) != width) {
            throw fail(op, in, "kv_store rows are f32[tokens, " + width + "] (the cache's width)");
        }
        Shape slots = in.get(2).shape();
        if (!in.get(2).dtype().isInteger() || slots.rank() != 1 || slots.dim(0) != rows.dim(0)) {
            throw fail(op, in, "kv_store slots are I32[tokens], one per row");
        }
        return cache;
    }

    private static TensorType pagedAttention(Op.PagedAttention a, List<TensorType> in) {
        arity(a, in, 5);
        Shape q = in.get(0).shape();
        if (!in.get(0).dtype().equals(DType.F32) || q.rank() != 3) {
            throw fail(a, in, "paged_attention queries are f32[tokens, heads, headDim]");
        }
        int tokens = q.dim(0);
        int hq = q.dim(1);
        int hkv = a.kvHeads();
        if (hkv < 1 || hq % hkv != 0) {
            throw fail(a, in, "grouped-query attention needs query heads a multiple of kvHeads (found hq=" + hq
                    + ", kvHeads=" + hkv + ")");
        }
        for (int i = 1; i <= 2; i++) {
            TensorType c = in.get(i);
            if (c.shape().rank() != 2 || !(c.dtype().isFloat() || c.dtype().isQuantized())
                    || c.shape().dim(1) % hkv != 0) {
                throw fail(a, in, "paged_attention caches are [slots, kvHeads * headDim]; operand " + i + " is " + c);
            }
        }
        if (in.get(1).shape().dim(0) != in.get(2).shape().dim(0)) {
            throw fail(a, in, "key and value caches have the same slots");
        }
        if (in.get(1).shape().dim(1) / hkv != q.dim(2)) {
            throw fail(a, in, "query and key head sizes must agree (found " + q.dim(2) + " and "
                    + in.get(1).shape().dim(1) / hkv + ")");
        }
        Shape pos = in.get(3).shape();
        Shape table = in.get(4).shape();
        if (!in.get(3).dtype().isInteger() || pos.rank() != 1 || pos.dim(0) != tokens) {
            throw fail(a, in, "paged_attention positions are I32[tokens]");
        }
        if (!in.get(4).dtype().isInteger() || table.rank() != 2 || table.dim(0) != tokens) {
            throw fail(a, in, "paged_attention block tables are I32[tokens, blocks]");
        }
        if (a.blockSize() < 1 || a.window() < 0 || !Double.isFinite(a.scale()) || !(a.softCap() >= 0)
                || Double.isInfinite(a.softCap())) {
            throw fail(a, in, "paged_attention needs blockSize >= 1, window >= 0 (0 = unlimited), a finite scale and"
                    + " a finite softCap >= 0 (0 = off)");
        }
        return new TensorType(Shape.of(tokens, hq, in.get(2).shape().dim(1) / hkv), DType.F32);
    }

    private static TensorType permute(Op.Permute p, List<TensorType> in) {
        arity(p, in, 1);
        requireNotQuantized(p, in, 0);
        Shape x = in.get(0).shape();
        List<Integer> axes = p.axes();
        boolean[] seen = new boolean[x.rank()];
        boolean ok = axes.size() == x.rank();
        for (int i = 0; ok && i < axes.size(); i++) {
            int ax = axes.get(i);
            ok = ax >= 0 && ax < x.rank() && !seen[ax];
            if (ok) {
                seen[ax] = true;
            }
        }
        if (!ok) {
            throw fail(p, in, "permute axes " + axes + " must be a permutation of 0.." + (x.rank() - 1));
        }
        int[] out = new int[x.rank()];
        for (int i = 0; i < out.length; i++) {
            out[i] = x.dim(axes.get(i));
        }
        return new TensorType(Shape.of(out), in.get(0).dtype());
    }

    private static TensorType concat(Op.Concat c, List<TensorType> in) {
        if (in.isEmpty()) {
            throw fail(c, in, "concat needs at least one operand");
        }
        Shape first = in.get(0).shape();
        axis(c, in, c.axis(), first.rank());
        long total = 0;
        for (int i = 0; i < in.size(); i++) {
            requireNotQuantized(c, in, i);
            Shape s = in.get(i).shape();
            if (!in.get(i).dtype().equals(in.get(0).dtype()) || s.rank() != first.rank()
                    || !s.with(c.axis(), 0).equals(first.with(c.axis(), 0))) {
                throw fail(c, in, "concat operands share dtype, rank and every dimension but axis " + c.axis());
            }
            total += s.dim(c.axis());
        }
        if (total > Integer.MAX_VALUE) {
            throw fail(c, in, "concat result dimension overflows int");
        }
        return new TensorType(first.with(c.axis(), (int) total), in.get(0).dtype());
    }

    private static void arity(Op op, List<TensorType> in, int n) {
        if (in.size() != n) {
            throw fail(op, in, op.name() + " takes " + n + " operand" + (n == 1 ? "" : "s"));
        }
    }

    private static void axis(Op op, List<TensorType> in, int axis, int rank) {
        if (axis < 0 || axis >= rank) {
            throw fail(op, in, "axis must be in 0.." + (rank - 1) + " (found " + axis + ")");
        }
    }

    private static void requireFloat(Op op, List<TensorType> in, int i, String rule) {
        if (!in.get(i).dtype().isFloat()) {
            throw fail(op, in, rule + "; operand " + i + " is " + in.get(i).dtype());
        }
    }

    private static void requireNotQuantized(Op op, List<TensorType> in, int i) {
        if (in.get(i).dtype().isQuantized()) {
            throw fail(op, in, "a quantized weight is only an operand of matmul (right side) or get_rows (table)");
        }
    }

    /** The error every broken rule throws: {@code op(operand types): rule}. */
    public static IllegalArgumentException fail(Op op, List<TensorType> in, String rule) {
        String operands = in.stream().map(TensorType::toString).collect(Collectors.joining(", "));
        return new IllegalArgumentException(op.name() + "(" + operands + "): " + rule + " [" + op + "]");
    }
}
