package aether.scheduler.compile;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * A fused chain of elementwise ops evaluated block by block over a domain (the root's shape): external operands are
 * gathered into registers (broadcast as needed), then each member runs over the block in id order, one register per
 * member, so intermediates never touch memory. Every op rounds its result to f32 exactly as the reference executor does
 * (double arithmetic, one rounding per op), so a fused chain is bit-identical to the same ops run one by one. A smaller
 * member (one that broadcasts into the domain) is recomputed per position. Registers are preallocated; evaluation
 * allocates nothing.
 */
final class ElementwiseProgram {

    private static final double SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
    private static final double GELU_COEF_A = 0.044715;

    private final float[][] regs;
    private final Gather[] loads;
    private final int[] loadReg;
    private final Op[] ops;
    private final int[] dst;
    private final int[] src0;
    private final int[] src1;
    private final int result;
    private final int preset;
    private final boolean vector;

    /**
     * @param members    the elementwise nodes, ascending ids
     * @param root       the member whose value is the result
     * @param domain     the shape whose positions a block covers
     * @param capacity   the largest block
     * @param storage    f32 storage of any non-member node read by a member
     * @param presetNode a non-member whose block the caller fills before {@link #evaluate} (an anchor row), or -1
     */
    ElementwiseProgram(OpGraph g, List<Integer> members, int root, Shape domain, int capacity,
            IntFunction<MemorySegment> storage, int presetNode) {
        this(g, members, root, domain, capacity, storage, presetNode, VectorLoops.ENABLED);
    }

    /** As above; {@code vector} chooses the Vector API loops (bit-identical) or the scalar ones. */
    ElementwiseProgram(OpGraph g, List<Integer> members, int root, Shape domain, int capacity,
            IntFunction<MemorySegment> storage, int presetNode, boolean vector) {
        this.vector = vector && VectorLoops.ENABLED;
        Map<Integer, Integer> reg = new HashMap<>();
        java.util.ArrayList<Gather> gathers = new java.util.ArrayList<>();
        java.util.ArrayList<Integer> gatherRegs = new java.util.ArrayList<>();
        int next = 0;
        if (presetNode >= 0) {
            reg.put(presetNode, next++);
        }
        for (int m : members) {
            for (int input : g.node(m).inputs()) {
                if (!members.contains(input) && !reg.containsKey(input)) {
                    reg.put(input, next);
                    gathers.add(new Gather(storage.apply(input), g.node(input).shape(), domain));
                    gatherRegs.add(next++);
                }
            }
        }
        ops = new Op[members.size()];
        dst = new int[members.size()];
        src0 = new int[members.size()];
        src1 = new int[members.size()];
        for (int i = 0; i < members.size(); i++) {
            Node n = g.node(members.get(i));
            ops[i] = n.op();
            src0[i] = reg.get(n.input(0));
            src1[i] = n.inputs().size() > 1 ? reg.get(n.input(1)) : -1;
            reg.put(n.id(), next);
            dst[i] = next++;
        }
        regs = new float[next][capacity];
        loads = gathers.toArray(new Gather[0]);
        loadReg = gatherRegs.stream().mapToInt(Integer::intValue).toArray();
        result = reg.get(root);
        preset = presetNode >= 0 ? 0 : -1;
    }

    /** The block the caller fills with the preset node's values before {@link #evaluate}. */
    float[] presetBlock() {
        if (preset < 0) {
            throw new IllegalStateException("elementwise program has no preset operand");
        }
        return regs[preset];
    }

    /** Evaluates positions {@code start..start+len)} of the domain; returns the register holding the root's values. */
    float[] evaluate(long start, int len) {
        for (int i = 0; i < loads.length; i++) {
            loads[i].load(start, len, regs[loadReg[i]]);
        }
        for (int i = 0; i < ops.length; i++) {
            float[] d = regs[dst[i]];
            float[] a = regs[src0[i]];
            switch (ops[i]) {
                case Op.Unary u -> unary(u.fn(), a, d, len, vector);
                case Op.Binary b -> binary(b.fn(), a, regs[src1[i]], d, len, vector);
                case Op.Scale s -> {
                    double f = s.factor();
                    if (vector && (double) (float) f == f) {
                        // x * f rounded once is the same in float and double when f is a float.
                        VectorLoops.Impl.mulScalar(a, (float) f, d, len);
                    } else {
                        for (int j = 0; j < len; j++) {
                            d[j] = (float) (a[j] * f);
                        }
                    }
                }
                case Op.Pow p -> {
                    double e = p.exponent();
                    for (int j = 0; j < len; j++) {
                        d[j] = (float) Math.pow(a[j], e);
                    }
                }
                case Op.Clamp c -> {
                    double lo = c.min();
                    double hi = c.max();
                    for (int j = 0; j < len; j++) {
                        d[j] = (float) Math.min(Math.max(a[j], lo), hi);
                    }
                }
                case Op.Cast c -> System.arraycopy(a, 0, d, 0, len);   // f32 -> f32 only (checked at compile)
                default -> throw new IllegalStateException("not elementwise: " + ops[i]);
            }
        }
        return regs[result];
    }

    // + - * / of two floats computed in double and rounded once equal the float operation itself (double has more than
    // 2p+2 bits), so plain float arithmetic matches the reference executor here.
    private static void binary(Op.BinaryFn fn, float[] a, float[] b, float[] d, int len, boolean vector) {
        if (vector) {
            switch (fn) {
                case ADD -> VectorLoops.Impl.add(a, b, d, len);
                case SUB -> VectorLoops.Impl.sub(a, b, d, len);
                case MUL -> VectorLoops.Impl.mul(a, b, d, len);
                case DIV -> VectorLoops.Impl.div(a, b, d, len);
                default -> binary(fn, a, b, d, len, false);
            }
            return;
        }
        switch (fn) {
            case ADD -> {
                for (int j = 0; j < len; j++) {
                    d[j] = a[j] + b[j];
                }
            }
            case SUB -> {
                for (int j = 0; j < len; j++) {
                    d[j] = a[j] - b[j];
                }
            }
            case MUL -> {
                for (int j = 0; j < len; j++) {
                    d[j] = a[j] * b[j];
                }
            }
            case DIV -> {
                for (int j = 0; j < len; j++) {
                    d[j] = a[j] / b[j];
                }
            }
            case POW -> {
                for (int j = 0; j < len; j++) {
                    d[j] = (float) Math.pow(a[j], b[j]);
                }
            }
            case EQ -> {
                for (int j = 0; j < len; j++) {
                    d[j] = a[j] == b[j] ? 1 : 0;
                }
            }
        }
    }

    private static void unary(Op.UnaryFn fn, float[] a, float[] d, int len, boolean vector) {
        if (vector && (fn == Op.UnaryFn.NEG || fn == Op.UnaryFn.RELU)) {
            if (fn == Op.UnaryFn.NEG) {
                VectorLoops.Impl.neg(a, d, len);
            } else {
                VectorLoops.Impl.relu(a, d, len);
            }
            return;
        }
        switch (fn) {
            case NEG -> {
                for (int j = 0; j < len; j++) {
                    d[j] = -a[j];
                }
            }
            case RELU -> {
                for (int j = 0; j < len; j++) {
                    d[j] = a[j] > 0 ? a[j] : 0;
                }
            }
            case EXP -> {
                for (int j = 0; j < len; j++) {
                    d[j] = (float) Math.exp(a[j]);
                }
            }
            case TANH -> {
                for (int j = 0; j < len; j++) {
                    d[j] = (float) Math.tanh(a[j]);
                }
            }
            case SIGMOID -> {
                for (int j = 0; j < len; j++) {
                    d[j] = (float) sigmoid(a[j]);
                }
            }
            case SILU -> {
                for (int j = 0; j < len; j++) {
                    double x = a[j];
                    d[j] = (float) (x * sigmoid(x));
                }
            }
            case GELU -> {
                for (int j = 0; j < len; j++) {
                    double x = a[j];
                    d[j] = (float) (0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * x * (1 + GELU_COEF_A * x * x))));
                }
            }
            default -> {
                for (int j = 0; j < len; j++) {
                    d[j] = (float) unary(fn, a[j]);
                }
            }
        }
    }

    /** The reference executor's formulas (Kernels.unary), in double. */
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
}
