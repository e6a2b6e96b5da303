package aether.scheduler.autograd;

import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.List;

/**
 * Vector-Jacobian products, one rule per op, each built from ordinary graph ops. {@code of(y, gy, need)} returns, for
 * input i with {@code need[i]}, the gradient of the loss with respect to that input, shaped like it.
 */
final class Vjp {

    private Vjp() {}

    /** Ops whose output carries gradient to their inputs (the rest are constants or piecewise constant). */
    static boolean differentiable(Op op) {
        return switch (op) {
            case Op.Input i -> false;
            case Op.Full f -> false;
            case Op.CausalMask m -> false;
            case Op.ArgMax a -> false;
            case Op.KvStore k -> false;          // inference ops: the KV cache is state, not a parameter
            case Op.PagedAttention a -> false;
            case Op.Unary u -> u.fn() != Op.UnaryFn.SIGN && u.fn() != Op.UnaryFn.STEP;
            case Op.Binary b -> b.fn() != Op.BinaryFn.EQ;
            default -> true;
        };
    }

    static Tensor[] of(Tensor y, Tensor gy, boolean[] need) {
        Graph g = y.graph();
        List<Integer> ids = y.node().inputs();
        Tensor[] x = new Tensor[ids.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = g.tensor(ids.get(i));
        }
        Tensor[] r = new Tensor[x.length];
        switch (y.node().op()) {
            case Op.Unary u -> r[0] = unary(u.fn(), x[0], y, gy);
            case Op.Pow p -> r[0] = gy.mul(x[0].pow(p.exponent() - 1)).scale(p.exponent());
            case Op.Clamp c -> r[0] = gy.mul(y.eq(x[0]));
            case Op.Scale s -> r[0] = gy.scale(s.factor());
            case Op.Cast c -> r[0] = gy.cast(x[0].dtype());
            case Op.Binary b -> binary(b.fn(), x[0], x[1], y, gy, need, r);
            case Op.Reduce red -> r[0] = reduce(red, x[0], y, gy);
            case Op.MatMul m -> matmul(m.transposeB(), x[0], x[1], gy, need, r);
            case Op.Softmax s -> softmax(s, x, y, gy, need, r);
            case Op.RmsNorm n -> {
                Tensor rs = x[0].pow(2).mean(-1, true).add(n.eps()).rsqrt();
                r[0] = rs.mul(gy.sub(y.mul(gy.mul(y).mean(-1, true))));
            }
            case Op.LayerNorm n -> {
                Tensor centered = x[0].sub(x[0].mean(-1, true));
                Tensor rs = centered.pow(2).mean(-1, true).add(n.eps()).rsqrt();
                r[0] = rs.mul(gy.sub(gy.mean(-1, true)).sub(y.mul(gy.mul(y).mean(-1, true))));
            }
            case Op.Rope rope -> {   // positions and frequency factors are constants
                Op.Rope back = new Op.Rope(rope.mode(), rope.nRot(), rope.freqBase(), -rope.freqScale());
                r[0] = x.length > 2 ? g.apply(back, gy, x[1], x[2]) : g.apply(back, gy, x[1]);
            }
            case Op.GetRows gr -> r[0] = g.apply(new Op.ScatterAddRows(x[0].shape().dim(0)), gy, x[1]);
            case Op.ScatterAddRows s -> r[0] = gy.getRows(x[1]);
            case Op.Attention a -> attention(a, x, gy, need, r);
            case Op.KvStore k -> throw new IllegalArgumentException("kv_store has no gradient (inference only)");
            case Op.PagedAttention a -> throw new IllegalArgumentException(
                    "paged_attention has no gradient (inference only; use attention for training)");
            case Op.Reshape rs -> r[0] = gy.reshape(x[0].shape());
            case Op.Permute p -> {
                int[] inverse = new int[p.axes().size()];
                for (int i = 0; i < inverse.length; i++) {
                    inverse[p.axes().get(i)] = i;
                }
                r[0] = gy.permute(inverse);
            }
            case Op.Expand e -> r[0] = sumTo(gy, x[0].shape());
            case Op.Concat c -> {
                int at = 0;
                for (int i = 0; i < x.length; i++) {
                    int len = x[i].shape().dim(c.axis());
                    if (need[i]) {
                        r[i] = gy.slice(c.axis(), at, at + len);
                    }
                    at += len;
                }
            }
            case Op.Slice s -> r[0] = gy.pad(s.axis(), s.start(), x[0].shape().dim(s.axis()) - s.end());
            case Op.Pad p -> r[0] = gy.slice(p.axis(), p.before(), p.before() + x[0].shape().dim(p.axis()));
            case Op.Input i -> { }
            case Op.Full f -> { }
            case Op.CausalMask m -> { }
            case Op.ArgMax a -> { }
        }
        return r;
    }

    private static Tensor unary(Op.UnaryFn fn, Tensor x, Tensor y, Tensor gy) {
        return switch (fn) {
            case NEG -> gy.neg();
            case ABS -> gy.mul(x.unary(Op.UnaryFn.SIGN));
            case EXP -> gy.mul(y);
            case LOG -> gy.div(x);
            case SQRT -> gy.div(y).scale(0.5);
            case RSQRT -> gy.mul(y.pow(3)).scale(-0.5);
            case TANH -> gy.mul(y.mul(y).neg().add(1));
            case SIGMOID -> gy.mul(y.mul(y.neg().add(1)));
            case RELU -> gy.mul(x.unary(Op.UnaryFn.STEP));
            case GELU -> gy.mul(x.unary(Op.UnaryFn.GELU_DERIV));
            case SILU -> gy.mul(x.unary(Op.UnaryFn.SILU_DERIV));
            case SIGN, STEP -> null;
            case GELU_DERIV, SILU_DERIV -> throw new UnsupportedOperationException("backward of "
                    + fn.name().toLowerCase(java.util.Locale.ROOT) + ": second-order gradients of gelu/silu are not"
                    + " supported");
        };
    }

    private static void binary(Op.BinaryFn fn, Tensor a, Tensor b, Tensor y, Tensor gy, boolean[] need,
            Tensor[] r) {
        switch (fn) {
            case ADD -> {
                r[0] = need[0] ? sumTo(gy, a.shape()) : null;
                r[1] = need[1] ? sumTo(gy, b.shape()) : null;
            }
            case SUB -> {
                r[0] = need[0] ? sumTo(gy, a.shape()) : null;
                r[1] = need[1] ? sumTo(gy.neg(), b.shape()) : null;
            }
            case MUL -> {
                r[0] = need[0] ? sumTo(gy.mul(b), a.shape()) : null;
                r[1] = need[1] ? sumTo(gy.mul(a), b.shape()) : null;
            }
            case DIV -> {
                r[0] = need[0] ? sumTo(gy.div(b), a.shape()) : null;
                r[1] = need[1] ? sumTo(gy.mul(y).div(b).neg(), b.shape()) : null;
            }
            case POW -> {
                r[0] = need[0] ? sumTo(gy.mul(b).mul(a.pow(b.sub(1))), a.shape()) : null;
                r[1] = need[1] ? sumTo(gy.mul(y).mul(a.log()), b.shape()) : null;
            }
            case EQ -> { }
        }
    }

    private static Tensor reduce(Op.Reduce red, Tensor x, Tensor y, Tensor gy) {
        Shape kept = x.shape().with(red.axis(), 1);
        Tensor gk = gy.reshape(kept);
        return switch (red.fn()) {
            case SUM -> gk.expand(x.shape());
            case MEAN -> gk.scale(1.0 / x.shape().dim(red.axis())).expand(x.shape());
            case MAX -> {
                // Ties share the gradient equally (like torch.amax): mask / count.
                Tensor mask = x.eq(y.reshape(kept));
                yield gk.mul(mask).div(mask.sum(red.axis(), true));
            }
        };
    }

    private static void matmul(boolean transposeB, Tensor a, Tensor b, Tensor gy, boolean[] need, Tensor[] r) {
        if (need[0]) {
            r[0] = sumTo(transposeB ? gy.matmul(b) : gy.matmulT(b), a.shape());
        }
        if (need[1]) {
            Tensor gb = transposeB ? gy.transpose(-1, -2).matmul(a) : a.transpose(-1, -2).matmul(gy);
            gb = sumTo(gb, b.shape());
            r[1] = gb.dtype().equals(b.dtype()) ? gb : gb.cast(b.dtype());
        }
    }

    private static void softmax(Op.Softmax s, Tensor[] x, Tensor y, Tensor gy, boolean[] need, Tensor[] r) {
        Tensor ds = y.mul(gy.sub(gy.mul(y).sum(-1, true)));
        if (x.length > 1 && need[1]) {
            r[1] = sumTo(ds, x[1].shape());
        }
        if (need[0]) {
            if (s.softCap() > 0) {
                Tensor t = x[0].scale(s.scale() / s.softCap()).tanh();
                ds = ds.mul(t.mul(t).neg().add(1));
            }
            r[0] = ds.scale(s.scale());
        }
    }

    /**
     * Attention's gradient: its definition rebuilt from matmul, mask and softmax over the same q, k, v, differentiated
     * by the same sweep, restricted to the rebuilt nodes. Grouped-query heads are a broadcast batch dimension, so the
     * sum over a group is the broadcast rule of matmul's backward.
     */
    private static void attention(Op.Attention a, Tensor[] x, Tensor gy, boolean[] need, Tensor[] r) {
        Tensor q = x[0];
        Tensor k = x[1];
        Tensor v = x[2];
        Graph g = q.graph();
        int floor = g.size() - 1;
        int rank = q.rank();
        int hq = q.shape().dim(rank - 3);
        int hkv = k.shape().dim(rank - 3);
        int tq = q.shape().dim(rank - 2);
        int tk = k.shape().dim(rank - 2);
        Tensor q5 = q.reshape(split(q.shape(), rank - 3, hkv, hq / hkv));
        Tensor k5 = k.reshape(split(k.shape(), rank - 3, hkv, 1));
        Tensor v5 = v.reshape(split(v.shape(), rank - 3, hkv, 1));
        Tensor mask = g.causalMask(tq, tk, a.window(), q.dtype());
        Tensor out = q5.matmulT(k5).softmax(mask, a.scale(), a.softCap()).matmul(v5);
        Tensor seed = gy.reshape(out.shape());
        java.util.Map<Integer, Tensor> grads = Autograd.reverse(out, seed,
                new java.util.HashSet<>(java.util.List.of(q.id(), k.id(), v.id())), floor);
        // q, k and v may be one tensor: its total gradient goes to its first position only.
        for (int i = 0; i < 3; i++) {
            boolean first = true;
            for (int j = 0; j < i; j++) {
                first &= x[j].id() != x[i].id();
            }
            r[i] = need[i] && first ? grads.get(x[i].id()) : null;
        }
    }

    private static Shape split(Shape s, int axis, int outer, int inner) {
        int[] d = s.dims();
        int[] out = new int[d.length + 1];
        System.arraycopy(d, 0, out, 0, axis);
        out[axis] = outer;
        out[axis + 1] = inner;
        System.arraycopy(d, axis + 1, out, axis + 2, d.length - axis - 1);
        return Shape.of(out);
    }

    /** Sums a broadcast gradient back to {@code target}: over leading extra dimensions and where target has size 1. */
    static Tensor sumTo(Tensor gy, Shape target) {
        Tensor t = gy;
        while (t.rank() > target.rank()) {
            t = t.sum(0);
        }
        for (int d = 0; d < target.rank(); d++) {
            if (target.dim(d) == 1 && t.shape().dim(d) != 1) {
                t = t.sum(d, true);
            }
        }
        if (!t.shape().equals(target)) {
            throw new IllegalStateException("gradient of shape " + gy.shape() + " does not reduce to " + target);
        }
        return t;
    }

}
