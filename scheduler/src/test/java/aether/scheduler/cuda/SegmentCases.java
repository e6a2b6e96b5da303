package aether.scheduler.cuda;

import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;
import aether.runtime.protocol.SegmentSpec;
import aether.scheduler.exec.HostSegmentExecutor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.IntFunction;
import java.util.stream.IntStream;

/**
 * Segments of every op kind the GPU runs, on fresh random inputs: shapes with NumPy broadcasting, lengths that are not
 * multiples of the kernels' block (256) or tile (64) sizes, reductions along every kind of axis, the two-pass sum,
 * masked and soft-capped softmax, batched matmul with broadcast batch dimensions, layout ops, and chains of them. Each
 * case carries its tolerance: |gpu - cpu| <= tol * (|cpu| + scale) element by element, NaN and infinities at the same
 * places. The CPU side is the scheduler's {@link HostSegmentExecutor}, what a CPU worker runs.
 */
final class SegmentCases {

    private SegmentCases() {}

    /** One segment with its inputs and how close the GPU must come to the CPU. */
    record Case(String name, SegmentSpec segment, List<float[]> inputs, double tol, double scale) {
        @Override
        public String toString() {
            return name;
        }

        /** The CPU worker's outputs. */
        List<float[]> cpu(HostSegmentExecutor executor) {
            List<MemorySegment> in = inputs.stream().map(SegmentCases::segment).toList();
            List<MemorySegment> out = new ArrayList<>();
            for (int o : segment.graph().outputs()) {
                out.add(Arena.ofAuto().allocate(4 * segment.graph().node(o).shape().size(), 64));
            }
            executor.run(segment, in, out);
            return out.stream().map(s -> s.toArray(ValueLayout.JAVA_FLOAT)).toList();
        }

        /** Sizes of the outputs in floats. */
        int[] outputSizes() {
            return segment.graph().outputs().stream().mapToInt(o -> (int) segment.graph().node(o).shape().size())
                    .toArray();
        }
    }

    static MemorySegment segment(float[] v) {
        MemorySegment s = Arena.ofAuto().allocate(Math.max(4L * v.length, 4), 64).asSlice(0, 4L * v.length);
        MemorySegment.copy(v, 0, s, ValueLayout.JAVA_FLOAT, 0, v.length);
        return s;
    }

    /** Builds one case: inputs of the given shapes filled by {@code fill}, then {@code body} adds the ops. */
    private static final class CaseBuilder {
        final OpGraph.Builder b = new OpGraph.Builder();
        final List<float[]> inputs = new ArrayList<>();
        final SplittableRandom r;

        CaseBuilder(SplittableRandom r) {
            this.r = r;
        }

        int input(Shape shape, IntFunction<Float> fill) {
            float[] v = new float[(int) shape.size()];
            for (int i = 0; i < v.length; i++) {
                v[i] = fill.apply(i);
            }
            inputs.add(v);
            return b.add(new Op.Input("x" + inputs.size(), new TensorType(shape, DType.F32)));
        }

        int gaussian(int... dims) {
            return input(Shape.of(dims), i -> (float) gauss(r));
        }

        int positive(int... dims) {
            return input(Shape.of(dims), i -> (float) (0.05 + 3 * r.nextDouble()));
        }

        Case build(String name, double tol, double scale, int... outputs) {
            OpGraph g = b.build(IntStream.of(outputs).boxed().toList());
            List<Integer> sources = IntStream.range(0, g.size()).boxed().toList();
            return new Case(name, new SegmentSpec(0, g, sources, 1), List.copyOf(inputs), tol, scale);
        }
    }

    static double gauss(SplittableRandom r) {
        double u1 = 1 - r.nextDouble();
        double u2 = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }

    static List<Case> all(SplittableRandom r) {
        List<Case> cases = new ArrayList<>();
        // ---- unary family: every UnaryFn (log/sqrt/rsqrt/pow on positive inputs), clamp, scale
        for (Op.UnaryFn fn : Op.UnaryFn.values()) {
            CaseBuilder c = new CaseBuilder(r);
            boolean positive = fn == Op.UnaryFn.LOG || fn == Op.UnaryFn.SQRT || fn == Op.UnaryFn.RSQRT;
            int x = positive ? c.positive(3, 517) : c.gaussian(3, 517);
            cases.add(c.build("unary " + fn, 2e-6, 1, c.b.add(new Op.Unary(fn), x)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.positive(1031);
            cases.add(c.build("pow 2.5", 1e-5, 1, c.b.add(new Op.Pow(2.5), x)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(7, 77);
            cases.add(c.build("clamp", 0, 1, c.b.add(new Op.Clamp(-0.5, 0.7), x)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(300);
            cases.add(c.build("scale", 1e-7, 1, c.b.add(new Op.Scale(1.75), x)));
        }
        // ---- binary family with broadcasting
        int[][][] shapes = {{{4, 1, 333}, {7, 1}}, {{2, 3, 5}, {5}}, {{1000}, {1000}}, {{1}, {6, 259}},
            {{3, 1, 5}, {1, 4, 1}}};
        for (Op.BinaryFn fn : Op.BinaryFn.values()) {
            for (int[][] s : shapes) {
                CaseBuilder c = new CaseBuilder(r);
                int a;
                int b;
                if (fn == Op.BinaryFn.POW) {
                    a = c.positive(s[0]);
                    b = c.gaussian(s[1]);
                } else if (fn == Op.BinaryFn.DIV) {
                    a = c.gaussian(s[0]);
                    b = c.input(Shape.of(s[1]), i -> (float) ((c.r.nextBoolean() ? 1 : -1) * (0.5 + c.r.nextDouble())));
                } else if (fn == Op.BinaryFn.EQ) {
                    // small integers: many equal pairs
                    a = c.input(Shape.of(s[0]), i -> (float) c.r.nextInt(3));
                    b = c.input(Shape.of(s[1]), i -> (float) c.r.nextInt(3));
                } else {
                    a = c.gaussian(s[0]);
                    b = c.gaussian(s[1]);
                }
                cases.add(c.build("binary " + fn + " " + java.util.Arrays.deepToString(s), 2e-6, 1,
                        c.b.add(new Op.Binary(fn), a, b)));
            }
        }
        // ---- reductions
        for (Op.ReduceFn fn : Op.ReduceFn.values()) {
            int[][] dims = {{37, 1029}, {5, 300, 7}, {300, 9}, {3, 1}};
            int[] axes = {1, 1, 0, 1};
            for (int i = 0; i < dims.length; i++) {
                CaseBuilder c = new CaseBuilder(r);
                int x = c.gaussian(dims[i]);
                cases.add(c.build("reduce " + fn + " " + java.util.Arrays.toString(dims[i]) + " axis " + axes[i],
                        2e-5, 4, c.b.add(new Op.Reduce(fn, axes[i], i % 2 == 0), x)));
            }
            // all of a long vector (the two-pass sum for sum and mean)
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(200_003);
            cases.add(c.build("reduce " + fn + " all of 200003", 1e-4, 30, c.b.add(new Op.Reduce(fn, 0, false), x)));
        }
        // ---- softmax: plain, scaled and capped, with a broadcast mask, with a causal mask, with a fully masked row
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(13, 1000);
            cases.add(c.build("softmax", 1e-5, 1e-3, c.b.add(new Op.Softmax(1, 0), x)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.input(Shape.of(5, 77), i -> (float) (20 * gauss(c.r)));
            int mask = c.input(Shape.of(1, 77), i -> c.r.nextInt(4) == 0 ? Float.NEGATIVE_INFINITY : (float) gauss(c.r));
            cases.add(c.build("softmax scale 0.5 cap 3 mask [1,77]", 1e-5, 1e-3,
                    c.b.add(new Op.Softmax(0.5, 3), x, mask)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(2, 9, 33);
            int mask = c.b.add(new Op.CausalMask(9, 33, 0, DType.F32));
            cases.add(c.build("softmax with causal mask", 1e-5, 1e-3, c.b.add(new Op.Softmax(0.125, 0), x, mask)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(3, 40);
            int mask = c.input(Shape.of(3, 40), i -> i / 40 == 1 || c.r.nextInt(3) == 0 ? Float.NEGATIVE_INFINITY : 0f);
            cases.add(c.build("softmax with a fully masked row", 1e-5, 1e-3, c.b.add(new Op.Softmax(1, 0), x, mask)));
        }
        // ---- norms
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(9, 4097);
            cases.add(c.build("rms_norm [9,4097]", 2e-5, 1, c.b.add(new Op.RmsNorm(1e-6), x)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.input(Shape.of(11, 333), i -> (float) (3 + 2 * gauss(c.r)));
            cases.add(c.build("layer_norm [11,333]", 2e-5, 1, c.b.add(new Op.LayerNorm(1e-5), x)));
        }
        // ---- matmul
        int[][][] mm = {{{3, 70, 130}, {130, 65}}, {{2, 1, 33, 17}, {3, 17, 29}}, {{5, 1000}, {1000, 3}},
            {{1, 64}, {64, 64}}, {{129, 1}, {1, 257}}};
        for (int[][] s : mm) {
            CaseBuilder c = new CaseBuilder(r);
            int a = c.gaussian(s[0]);
            int b = c.gaussian(s[1]);
            int k = s[0][s[0].length - 1];
            cases.add(c.build("matmul " + java.util.Arrays.deepToString(s), 1e-5, Math.sqrt(k) * 4,
                    c.b.add(new Op.MatMul(false), a, b)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int a = c.gaussian(70, 130);
            int b = c.gaussian(65, 130);
            cases.add(c.build("matmul_t [70,130]x[65,130]^T", 1e-5, Math.sqrt(130) * 4,
                    c.b.add(new Op.MatMul(true), a, b)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int a = c.gaussian(2, 4, 9, 48);
            int b = c.gaussian(4, 31, 48);
            cases.add(c.build("matmul_t batched [2,4,9,48]x[4,31,48]^T", 1e-5, Math.sqrt(48) * 4,
                    c.b.add(new Op.MatMul(true), a, b)));
        }
        // ---- layout
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(2, 3, 4, 5);
            cases.add(c.build("permute (3,1,0,2)", 0, 1, c.b.add(new Op.Permute(List.of(3, 1, 0, 2)), x)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(3, 1, 5);
            cases.add(c.build("expand [3,1,5] to [2,3,4,5]", 0, 1, c.b.add(new Op.Expand(Shape.of(2, 3, 4, 5)), x)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(4, 10, 3);
            cases.add(c.build("slice axis 1 2..7", 0, 1, c.b.add(new Op.Slice(1, 2, 7), x)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(3, 4);
            int y = c.gaussian(3, 4);
            cases.add(c.build("pad axis 0 (2, 1) and axis 1 (0, 3)", 0, 1, c.b.add(new Op.Pad(0, 2, 1), x),
                    c.b.add(new Op.Pad(1, 0, 3), y)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int a = c.gaussian(2, 3, 4);
            int b = c.gaussian(2, 5, 4);
            int d = c.gaussian(2, 1, 4);
            cases.add(c.build("concat axis 1", 0, 1, c.b.add(new Op.Concat(1), a, b, d)));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(6, 10);
            int reshaped = c.b.add(new Op.Reshape(Shape.of(3, 20)), x);
            int full = c.b.add(new Op.Full(2.5, TensorType.of(DType.F32, 3, 20)));
            int mask = c.b.add(new Op.CausalMask(5, 12, 4, DType.F32));
            reshaped = c.b.add(new Op.Cast(DType.F32), reshaped);
            cases.add(c.build("reshape, cast, full, windowed causal mask, an input as output", 0, 1, reshaped,
                    c.b.add(new Op.Binary(Op.BinaryFn.MUL), reshaped, full), mask, x));
        }
        // ---- chains: an MLP block and an attention-like block in one segment each
        {
            CaseBuilder c = new CaseBuilder(r);
            int x = c.gaussian(17, 96);
            int w1 = c.input(Shape.of(96, 200), i -> (float) (0.1 * gauss(c.r)));
            int bias = c.gaussian(200);
            int w2 = c.input(Shape.of(50, 200), i -> (float) (0.1 * gauss(c.r)));
            int h = c.b.add(new Op.RmsNorm(1e-5), x);
            h = c.b.add(new Op.MatMul(false), h, w1);
            h = c.b.add(new Op.Binary(Op.BinaryFn.ADD), h, bias);
            h = c.b.add(new Op.Unary(Op.UnaryFn.GELU), h);
            int logits = c.b.add(new Op.MatMul(true), h, w2);
            int p = c.b.add(new Op.Softmax(1, 0), logits);
            int loss = c.b.add(new Op.Reduce(Op.ReduceFn.SUM, 0, false),
                    c.b.add(new Op.Reshape(Shape.of(17 * 50)), c.b.add(new Op.Binary(Op.BinaryFn.MUL), p, logits)));
            cases.add(c.build("chain: rms_norm, matmul, bias, gelu, matmul_t, softmax, sum", 1e-4, 1, p, loss));
        }
        {
            CaseBuilder c = new CaseBuilder(r);
            int q = c.gaussian(2, 11, 16);
            int k = c.gaussian(2, 11, 16);
            int v = c.gaussian(2, 11, 16);
            int kt = c.b.add(new Op.Permute(List.of(0, 2, 1)), k);
            int s = c.b.add(new Op.MatMul(false), q, kt);
            int mask = c.b.add(new Op.CausalMask(11, 11, 0, DType.F32));
            int p = c.b.add(new Op.Softmax(0.25, 0), s, mask);
            int o = c.b.add(new Op.MatMul(false), p, v);
            int mean = c.b.add(new Op.Reduce(Op.ReduceFn.MEAN, 1, true), o);
            cases.add(c.build("chain: attention by hand (permute, matmul, causal softmax, matmul, mean)", 1e-4, 4, o,
                    mean));
        }
        return cases;
    }

    /** The first element where {@code out} is not within the case's tolerance of {@code ref}, or null. */
    static String mismatch(Case c, List<float[]> out, List<float[]> ref) {
        for (int j = 0; j < ref.size(); j++) {
            float[] o = out.get(j);
            float[] e = ref.get(j);
            if (o.length != e.length) {
                return "output " + j + ": " + o.length + " values (expected " + e.length + ")";
            }
            for (int i = 0; i < e.length; i++) {
                boolean same = Float.isNaN(e[i]) ? Float.isNaN(o[i])
                        : Float.isInfinite(e[i]) ? o[i] == e[i]
                        : Math.abs(o[i] - e[i]) <= c.tol() * (Math.abs(e[i]) + c.scale());
                if (!same) {
                    return "output " + j + " element " + i + ": " + o[i] + " (expected " + e[i] + " within "
                            + c.tol() + " x (|expected| + " + c.scale() + "))";
                }
            }
        }
        return null;
    }

    /** Nodes of the case's graph, for messages. */
    static String dump(Case c) {
        StringBuilder sb = new StringBuilder();
        for (Node n : c.segment().graph().nodes()) {
            sb.append('%').append(n.id()).append(' ').append(n.op().name()).append(n.inputs()).append(' ')
                    .append(n.type()).append('\n');
        }
        return sb.toString();
    }
}
