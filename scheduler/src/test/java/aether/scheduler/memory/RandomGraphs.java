package aether.scheduler.memory;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Random f32 DAGs over a few shapes (elementwise, broadcasting, matmul, norms, reshape views, reductions). */
public final class RandomGraphs {

    private RandomGraphs() {}

    public static OpGraph generate(long seed, int ops) {
        return generate(seed, ops, false);
    }

    /**
     * @param redundancy also emit what the compiler passes remove: identities ({@code x * 1}, {@code x + 0},
     *                   {@code scale 1}, double negation, reshape/permute round trips), duplicated ops and constant
     *                   subexpressions
     */
    public static OpGraph generate(long seed, int ops, boolean redundancy) {
        Random rnd = new Random(seed);
        OpGraph.Builder b = new OpGraph.Builder();
        List<Integer> values = new ArrayList<>();
        values.add(b.add(new Op.Input("x", TensorType.of(DType.F32, 4, 8))));
        values.add(b.add(new Op.Input("y", TensorType.of(DType.F32, 8))));
        values.add(b.add(new Op.Input("w", TensorType.of(DType.F32, 8, 8))));
        for (int i = 0; i < ops; i++) {
            int a = values.get(rnd.nextInt(values.size()));
            int c = values.get(rnd.nextInt(values.size()));
            Shape as = b.node(a).shape();
            Op op = switch (rnd.nextInt(9)) {
                case 0 -> new Op.Unary(Op.UnaryFn.values()[rnd.nextInt(11)]);
                case 1 -> new Op.Scale(rnd.nextInt(5) - 2);
                case 2, 3 -> Shape.broadcast(as, b.node(c).shape()) != null
                        ? new Op.Binary(Op.BinaryFn.values()[rnd.nextInt(4)]) : new Op.Unary(Op.UnaryFn.TANH);
                case 4 -> as.rank() >= 2 && b.node(c).shape().rank() >= 2 && as.dim(-1) == b.node(c).shape().dim(-1)
                        ? new Op.MatMul(true) : new Op.Unary(Op.UnaryFn.SILU);
                case 5 -> new Op.RmsNorm(1e-5);
                case 6 -> new Op.Softmax(rnd.nextDouble(), 0);
                case 7 -> new Op.Reshape(Shape.of((int) as.size()));
                default -> as.rank() >= 2 ? new Op.Reduce(Op.ReduceFn.SUM, 0, false) : new Op.Clamp(-1, 1);
            };
            int id = op instanceof Op.Binary || op instanceof Op.MatMul ? b.add(op, a, c) : b.add(op, a);
            values.add(id);
            if (redundancy) {
                values.add(redundant(b, rnd, id));
            }
        }
        List<Integer> outs = new ArrayList<>();
        if (redundancy) {
            outs.add(values.get(rnd.nextInt(values.size())));
        }
        outs.add(values.get(values.size() - 1));
        if (rnd.nextBoolean()) {
            outs.add(values.get(3 + rnd.nextInt(values.size() - 3)));
        }
        return b.build(outs).prune().graph();
    }

    /** A value equal to {@code v} computed the long way (or a duplicate of its op). */
    private static int redundant(OpGraph.Builder b, Random rnd, int v) {
        TensorType t = b.node(v).type();
        Shape s = t.shape();
        return switch (rnd.nextInt(8)) {
            case 0 -> b.add(new Op.Binary(Op.BinaryFn.MUL), v, b.add(new Op.Full(1, t)));
            case 1 -> b.add(new Op.Binary(Op.BinaryFn.ADD), b.add(new Op.Full(0, TensorType.of(DType.F32))), v);
            case 2 -> b.add(new Op.Scale(1), b.add(new Op.Unary(Op.UnaryFn.NEG), b.add(new Op.Unary(Op.UnaryFn.NEG), v)));
            case 3 -> s.rank() == 2
                    ? b.add(new Op.Permute(List.of(1, 0)), b.add(new Op.Permute(List.of(1, 0)), v))
                    : b.add(new Op.Reshape(s), b.add(new Op.Reshape(Shape.of(1, (int) s.size())), v));
            case 4 -> {
                Op op = b.node(v).op();
                int[] ins = b.node(v).inputs().stream().mapToInt(Integer::intValue).toArray();
                yield op instanceof Op.Input ? v : b.add(op, ins);   // a duplicate for CSE
            }
            case 5 -> {   // a constant subexpression: exp(full(0.5)) * 2, broadcast in
                int c = b.add(new Op.Scale(2), b.add(new Op.Unary(Op.UnaryFn.EXP),
                        b.add(new Op.Full(0.5, TensorType.of(DType.F32, s.rank() == 0 ? 1 : s.dim(-1))))));
                yield Shape.broadcast(s, b.node(c).shape()) != null && Shape.broadcast(s, b.node(c).shape()).equals(s)
                        ? b.add(new Op.Binary(Op.BinaryFn.SUB), v, c) : v;
            }
            case 6 -> b.add(new Op.Binary(Op.BinaryFn.DIV), v, b.add(new Op.Full(1, TensorType.of(DType.F32))));
            default -> b.add(new Op.Cast(DType.F32), v);
        };
    }
}
