package aether.scheduler.compile;

import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.TensorType;
import java.util.ArrayList;
import java.util.List;

/**
 * Algebraic identities, applied only where the result is exactly the operand: same shape (so {@code x + zeros} of a
 * larger, broadcast shape is kept), same dtype, and the same value for every input including infinities and NaN.
 *
 * <ul>
 *   <li>{@code x * 1}, {@code 1 * x}, {@code x / 1}, {@code x - 0}, {@code x + 0}, {@code 0 + x}, {@code x ^ 1},
 *       {@code pow(x, 1)}, {@code scale(x, 1)}, {@code clamp(x, -inf, inf)}, where the constant is a {@code full}
 *       node;</li>
 *   <li>{@code neg(neg x)}, {@code abs(abs x)}, {@code relu(relu x)}; {@code scale(scale x)} when one factor is
 *       {@code ±1} (otherwise {@code (x*a)*b} and {@code x*(a*b)} round differently, so they are kept);</li>
 *   <li>reshape to the same shape, reshape of reshape, identity permute, permute of permute (composed), expand to the
 *       same shape, expand of expand, full slices, empty pads, one-operand concat;</li>
 *   <li>cast to the operand's own dtype; {@code cast(cast(x: A) -> B) -> C} becomes {@code cast(x) -> C} (or {@code x}
 *       when C is A) when B holds every value of A (f64 ⊇ f32 ⊇ f16, bf16).</li>
 * </ul>
 *
 * Signed zeros: {@code x + (+0.0)} turns {@code -0.0} into {@code +0.0}, and the sign of a zero is visible later
 * ({@code 1 / x} gives {@code -inf} or {@code +inf}), so by default only the bit-exact forms fold: {@code x + (-0.0)},
 * {@code (-0.0) + x} and {@code x - (+0.0)}. {@link #ignoringSignedZeros()} also folds {@code x + (+0.0)} and {@code x -
 * (-0.0)}, fast-math style, for callers that accept that. The IR has no ops with side effects, and outputs keep their
 * values, so nothing else needs protecting. Replaced nodes are left for dead-code elimination.
 */
public final class Simplify implements Pass {

    private final boolean strictSignedZeros;

    /** Bit-exact identities only. */
    public Simplify() {
        this(true);
    }

    private Simplify(boolean strictSignedZeros) {
        this.strictSignedZeros = strictSignedZeros;
    }

    /** Also folds {@code x + (+0.0)} and {@code x - (-0.0)}, which turn a {@code -0.0} result into {@code +0.0}. */
    public static Simplify ignoringSignedZeros() {
        return new Simplify(false);
    }

    @Override
    public String name() {
        return strictSignedZeros ? "simplify" : "simplify(ignore-signed-zeros)";
    }

    @Override
    public Rewrite run(Program program) {
        Rewriter rw = new Rewriter(program);
        for (Node n : program.graph().nodes()) {
            if (n.op() instanceof Op.Input) {
                rw.copy(n);
                continue;
            }
            int[] in = rw.mappedInputs(n);
            int replacement = simplify(rw, n.op(), in, n.type());
            if (replacement >= 0) {
                rw.replace(n.id(), replacement);
            } else {
                rw.copy(n);
            }
        }
        return rw.finish();
    }

    /** The new id that computes {@code op(in)} exactly, possibly a newly added node, or -1 to keep the node. */
    private int simplify(Rewriter rw, Op op, int[] in, TensorType out) {
        return switch (op) {
            case Op.Binary b -> binary(rw, b.fn(), in[0], in[1], out);
            case Op.Unary u -> unary(rw, u.fn(), in[0]);
            case Op.Scale s -> scale(rw, s.factor(), in[0]);
            case Op.Pow p -> p.exponent() == 1.0 ? in[0] : -1;
            case Op.Clamp c -> c.min() == Double.NEGATIVE_INFINITY && c.max() == Double.POSITIVE_INFINITY ? in[0] : -1;
            case Op.Cast c -> cast(rw, c.to(), in[0]);
            case Op.Reshape r -> reshape(rw, r, in[0], out);
            case Op.Permute p -> permute(rw, p.axes(), in[0]);
            case Op.Expand e -> {
                if (rw.type(in[0]).equals(out)) {
                    yield in[0];
                }
                Node x = rw.node(in[0]);
                yield x.op() instanceof Op.Expand ? rw.add(e, x.input(0)) : -1;
            }
            case Op.Slice s -> s.start() == 0 && s.end() == rw.type(in[0]).shape().dim(s.axis()) ? in[0] : -1;
            case Op.Pad p -> p.before() == 0 && p.after() == 0 ? in[0] : -1;
            case Op.Concat c -> in.length == 1 ? in[0] : -1;
            default -> -1;
        };
    }

    private int binary(Rewriter rw, Op.BinaryFn fn, int a, int b, TensorType out) {
        boolean aSame = rw.type(a).equals(out);
        boolean bSame = rw.type(b).equals(out);
        return switch (fn) {
            case MUL -> aSame && isFull(rw, b, 1.0) ? a : bSame && isFull(rw, a, 1.0) ? b : -1;
            case DIV -> aSame && isFull(rw, b, 1.0) ? a : -1;
            case POW -> aSame && isFull(rw, b, 1.0) ? a : -1;
            // x + (-0) and (-0) + x are exact for every x; +0 turns -0 into +0.
            case ADD -> aSame && isZero(rw, b, -0.0) ? a : bSame && isZero(rw, a, -0.0) ? b : -1;
            // x - (+0) is x + (-0): exact; x - (-0) is x + (+0).
            case SUB -> aSame && isZero(rw, b, 0.0) ? a : -1;
            case EQ -> -1;
        };
    }

    private static boolean isFull(Rewriter rw, int id, double value) {
        return rw.node(id).op() instanceof Op.Full f && Double.compare(f.value(), value) == 0;
    }

    /** A full zero; {@code exact} is the sign that folds bit-exactly, the other only when ignoring signed zeros. */
    private boolean isZero(Rewriter rw, int id, double exact) {
        if (!(rw.node(id).op() instanceof Op.Full f) || f.value() != 0.0) {
            return false;
        }
        return !strictSignedZeros || Double.compare(f.value(), exact) == 0;
    }

    private static int unary(Rewriter rw, Op.UnaryFn fn, int x) {
        Node inner = rw.node(x);
        if (!(inner.op() instanceof Op.Unary u)) {
            return -1;
        }
        return switch (fn) {
            case NEG -> u.fn() == Op.UnaryFn.NEG ? inner.input(0) : -1;
            case ABS, RELU -> u.fn() == fn ? x : -1;
            default -> -1;
        };
    }

    private static int scale(Rewriter rw, double factor, int x) {
        if (factor == 1.0) {
            return x;
        }
        Node inner = rw.node(x);
        if (inner.op() instanceof Op.Scale s && (Math.abs(s.factor()) == 1.0 || Math.abs(factor) == 1.0)) {
            // (x * a) * (±1) == x * (±a) exactly: negation commutes with rounding.
            double combined = s.factor() * factor;
            return combined == 1.0 ? inner.input(0) : rw.add(new Op.Scale(combined), inner.input(0));
        }
        return -1;
    }

    private static int cast(Rewriter rw, DType to, int x) {
        TensorType xt = rw.type(x);
        if (xt.dtype().equals(to)) {
            return x;
        }
        Node inner = rw.node(x);
        if (inner.op() instanceof Op.Cast) {
            int source = inner.input(0);
            DType a = rw.type(source).dtype();
            if (holds(xt.dtype(), a)) {
                return a.equals(to) ? source : rw.add(new Op.Cast(to), source);
            }
        }
        return -1;
    }

    /** True when every value of {@code narrow} is exactly a value of {@code wide}. */
    static boolean holds(DType wide, DType narrow) {
        if (wide.equals(narrow) || wide.equals(DType.F64)) {
            return true;
        }
        return wide.equals(DType.F32) && (narrow.equals(DType.F16) || narrow.equals(DType.BF16));
    }

    private static int reshape(Rewriter rw, Op.Reshape r, int x, TensorType out) {
        if (rw.type(x).equals(out)) {
            return x;
        }
        Node inner = rw.node(x);
        if (inner.op() instanceof Op.Reshape) {
            int source = inner.input(0);
            return rw.type(source).equals(out) ? source : rw.add(r, source);
        }
        return -1;
    }

    private static int permute(Rewriter rw, List<Integer> axes, int x) {
        if (isIdentity(axes)) {
            return x;
        }
        Node inner = rw.node(x);
        if (inner.op() instanceof Op.Permute p) {
            // out[i] = mid[axes[i]] = x[p[axes[i]]]
            List<Integer> composed = new ArrayList<>(axes.size());
            for (int a : axes) {
                composed.add(p.axes().get(a));
            }
            int source = inner.input(0);
            return isIdentity(composed) ? source : rw.add(new Op.Permute(composed), source);
        }
        return -1;
    }

    private static boolean isIdentity(List<Integer> axes) {
        for (int i = 0; i < axes.size(); i++) {
            if (axes.get(i) != i) {
                return false;
            }
        }
        return true;
    }
}
