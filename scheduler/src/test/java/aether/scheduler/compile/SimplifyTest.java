package aether.scheduler.compile;

import static aether.scheduler.compile.Programs.assertSameResults;
import static aether.scheduler.compile.Programs.runThenDce;
import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Simplify: each identity folds to its operand (node counts before/after) and results stay bit-identical. */
class SimplifyTest {

    private static Program program(Tensor... outputs) {
        return Program.from(outputs[0].graph(), List.of(), outputs).program();
    }

    @Test
    void arithmeticIdentitiesFoldToTheOperand() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(2, 3), DType.F32);
        Tensor one = g.full(1, Shape.of(2, 3), DType.F32);
        Tensor zero = g.scalar(0, DType.F32);
        Tensor negZero = g.scalar(-0.0, DType.F32);
        Tensor y = x.mul(one).add(negZero).sub(zero).div(g.scalar(1, DType.F32)).neg().neg().scale(1).pow(1.0)
                .clamp(Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY);
        Tensor z = one.mul(x.exp());
        Program p = program(y, z);
        assertThat(p.size()).isEqualTo(16);   // x, 4 fulls, 9 ops for y, exp and mul for z
        Rewrite r = runThenDce(new Simplify(), p);
        // y collapses to x itself; z to exp(x): input + exp.
        assertThat(r.program().size()).isEqualTo(2);
        assertThat(r.program().graph().outputs()).containsExactly(0, 1);
        assertSameResults(p, r, 1);
    }

    @Test
    void broadcastingIdentitiesThatGrowTheShapeAreKept() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(3), DType.F32);
        Tensor zeros = g.full(0, Shape.of(2, 3), DType.F32);
        Tensor ones = g.full(1, Shape.of(4, 1), DType.F32);
        Tensor a = x.add(zeros);                 // [2, 3]: not x
        Tensor b = x.mul(ones);                  // [4, 3]: not x
        Tensor c = x.mul(g.full(1, Shape.of(3), DType.F32));   // same shape: folds
        Program p = program(a, b, c);
        Rewrite r = runThenDce(new Simplify(), p);
        assertThat(r.program().size()).isEqualTo(p.size() - 2);
        assertThat(r.program().graph().node(r.program().graph().outputs().get(2)).op()).isInstanceOf(Op.Input.class);
        assertSameResults(p, r, 2);
    }

    @Test
    void nonIdentityConstantsAndInexactScaleChainsAreKept() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(5), DType.F32);
        Tensor a = x.mul(g.full(2, Shape.of(5), DType.F32));
        Tensor b = x.scale(0.1).scale(3);        // (x*0.1)*3 != x*0.3 in f32 rounding
        Tensor c = x.add(g.scalar(1e-30, DType.F32));
        Program p = program(a, b, c);
        Rewrite r = runThenDce(new Simplify(), p);
        assertThat(r.program().size()).isEqualTo(p.size());
        assertSameResults(p, r, 3);
    }

    @Test
    void scaleByMinusOneComposesExactly() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(7), DType.F32);
        Tensor a = x.scale(0.1).scale(-1);
        Tensor b = x.scale(-1).scale(-1);
        Program p = program(a, b);
        Rewrite r = runThenDce(new Simplify(), p);
        assertThat(r.program().size()).isEqualTo(2);   // x, scale(-0.1); b is x
        assertThat(r.program().graph().node(1).op()).isEqualTo(new Op.Scale(-0.1));
        assertSameResults(p, r, 4);
    }

    @Test
    void layoutChainsCompose() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(2, 3, 4), DType.F32);
        Tensor t = x.transpose(0, 2).transpose(0, 2);            // identity
        Tensor q = x.permute(1, 2, 0).permute(2, 0, 1);          // identity
        Tensor u = x.permute(1, 0, 2).permute(0, 2, 1);          // one permute
        Tensor v = x.reshape(6, 4).reshape(24).reshape(4, 6);    // one reshape
        Tensor w = x.reshape(24).reshape(2, 3, 4);               // x
        Tensor e = x.expand(Shape.of(5, 2, 3, 4)).slice(1, 0, 2).pad(2, 0, 0);
        Program p = program(t, q, u, v, w, e);
        Rewrite r = runThenDce(new Simplify(), p);
        // x, composed permute, single reshape, expand
        assertThat(r.program().size()).isEqualTo(4);
        assertThat(r.program().graph().node(r.map(u.id() < 0 ? 0 : p.graph().outputs().get(2))).op())
                .isEqualTo(new Op.Permute(List.of(1, 2, 0)));
        assertSameResults(p, r, 5);
    }

    @Test
    void castChainsFoldOnlyThroughWiderTypes() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(9), DType.F32);
        Tensor a = x.cast(DType.F64).cast(DType.F32);           // exact round trip: x
        Tensor b = x.cast(DType.F16).cast(DType.F32);           // rounds: kept
        Tensor c = x.cast(DType.F32);                           // same dtype: x
        Tensor h = g.input("h", Shape.of(9), DType.F16);
        Tensor d = h.cast(DType.F32).cast(DType.BF16);          // f32 holds f16: cast(h -> bf16)
        Program p = program(a, b, c, d);
        Rewrite r = runThenDce(new Simplify(), p);
        assertThat(r.program().graph().outputs().get(0)).isEqualTo(r.map(0));
        assertThat(r.program().graph().outputs().get(2)).isEqualTo(r.map(0));
        int dOut = r.program().graph().outputs().get(3);
        assertThat(r.program().graph().node(dOut).op()).isEqualTo(new Op.Cast(DType.BF16));
        assertThat(r.program().graph().node(r.program().graph().node(dOut).input(0)).op())
                .isInstanceOf(Op.Input.class);
        assertThat(r.program().size()).isEqualTo(5);   // x, h, f16 cast, f32 cast, bf16 cast
        assertSameResults(p, r, 6);
    }

    @Test
    void signedZerosAreKeptByDefault() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(4), DType.F32);
        Tensor plus = x.add(g.full(0.0, Shape.of(4), DType.F32));      // -0 + +0 = +0: not x
        Tensor minus = x.add(g.full(-0.0, Shape.of(4), DType.F32));    // exact
        Tensor sub = x.sub(g.full(0.0, Shape.of(4), DType.F32));       // exact
        Tensor subNeg = x.sub(g.full(-0.0, Shape.of(4), DType.F32));   // x + (+0): not x
        Program p = program(plus, minus, sub, subNeg);
        Rewrite strict = runThenDce(new Simplify(), p);
        assertThat(strict.program().graph().outputs().get(0)).isNotEqualTo(0);
        assertThat(strict.program().graph().outputs().get(1)).isEqualTo(0);
        assertThat(strict.program().graph().outputs().get(2)).isEqualTo(0);
        assertThat(strict.program().graph().outputs().get(3)).isNotEqualTo(0);
        // -0.0 in the input: the default stays bit-exact, the fast-math variant flips the sign of a zero.
        Map<Integer, TensorValue> in = Map.of(0, HostTensor.ofFloats(new float[] {-0.0f, 0.0f, 1, -2}, Shape.of(4)));
        var before = Programs.evaluate(p, in);
        var after = Programs.evaluate(strict.program(), Programs.remap(in, strict));
        for (int i = 0; i < 4; i++) {
            assertThat(Programs.bits(after.get(i))).containsExactly(Programs.bits(before.get(i)));
        }
        Rewrite fast = runThenDce(Simplify.ignoringSignedZeros(), p);
        assertThat(fast.program().size()).isEqualTo(1);
        var loose = Programs.evaluate(fast.program(), Programs.remap(in, fast));
        assertThat(loose.get(0).get(0)).isEqualTo(-0.0);
        assertThat(before.get(0).get(0)).isEqualTo(0.0);
        assertThat(Double.doubleToRawLongBits(loose.get(0).get(0)))
                .isNotEqualTo(Double.doubleToRawLongBits(before.get(0).get(0)));
    }

    @Test
    void outputsKeepTheirOrderAndDuplicates() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(3), DType.F32);
        Tensor a = x.scale(1);
        Tensor b = x.exp();
        Program p = program(b, a, x);
        Rewrite r = runThenDce(new Simplify(), p);
        assertThat(r.program().graph().outputs()).containsExactly(1, 0, 0);
        assertSameResults(p, r, 7);
    }
}
