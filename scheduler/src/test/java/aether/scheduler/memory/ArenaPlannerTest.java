package aether.scheduler.memory;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.TensorType;
import aether.scheduler.fusion.FusionPlan;
import aether.scheduler.fusion.FusionPlanner;
import java.util.List;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

/** Liveness intervals and first-fit-decreasing packing: no live overlap, alignment, peak bounds. */
class ArenaPlannerTest {

    private static void assertValid(OpGraph g, FusionPlan fusion) {
        Liveness live = Liveness.analyze(g, fusion);
        ArenaPlan plan = ArenaPlanner.plan(live, g.size());
        List<Lifetime> ls = plan.lifetimes();
        long sum = 0;
        long alignedSum = 0;
        long largest = 0;
        for (Lifetime a : ls) {
            long off = plan.offset(a.node());
            assertThat(off % ArenaPlanner.ALIGNMENT).isZero();
            assertThat(off + a.bytes()).isLessThanOrEqualTo(plan.peakBytes());
            sum += a.bytes();
            alignedSum += ArenaPlanner.align(a.bytes());
            largest = Math.max(largest, a.bytes());
            for (Lifetime b : ls) {
                if (a != b && a.overlaps(b) && a.bytes() > 0 && b.bytes() > 0) {
                    long ob = plan.offset(b.node());
                    assertThat(off + a.bytes() <= ob || ob + b.bytes() <= off)
                            .as("%%%d [%d,%d) and %%%d [%d,%d) are live together", a.node(), off, off + a.bytes(),
                                    b.node(), ob, ob + b.bytes())
                            .isTrue();
                }
            }
        }
        assertThat(plan.intermediateBytes()).isEqualTo(sum);
        // First fit never places a buffer past the aligned sizes of everything placed before it.
        assertThat(plan.peakBytes()).isBetween(largest, alignedSum);
        // Every value a group reads is live at that group's step, and the group's own output from its step on.
        for (var group : fusion.groups()) {
            for (int m : group.members()) {
                for (int input : g.node(m).inputs()) {
                    int s = live.storage(input);
                    if (!group.members().contains(input) && plan.offset(s) >= 0) {
                        Lifetime l = ls.stream().filter(x -> x.node() == s).findFirst().orElseThrow();
                        assertThat(l.first()).isLessThan(group.id());
                        assertThat(l.last()).isGreaterThanOrEqualTo(group.id());
                    }
                }
            }
        }
        for (int o : g.outputs()) {
            int s = live.storage(o);
            ls.stream().filter(x -> x.node() == s).forEach(l -> assertThat(l.last()).isEqualTo(live.steps()));
        }
    }

    @Property(tries = 200)
    void randomGraphsPackWithoutOverlap(@ForAll long seed, @ForAll @IntRange(min = 1, max = 30) int ops) {
        OpGraph g = RandomGraphs.generate(seed, ops);
        assertValid(g, FusionPlan.unfused(g));
        assertValid(g, new FusionPlanner().plan(g));
    }

    @Test
    void aChainPingPongsBetweenTwoBuffers() {
        TensorType t = TensorType.of(DType.F32, 1000);   // 4000 bytes, 4032 aligned
        OpGraph.Builder b = new OpGraph.Builder();
        int v = b.add(new Op.Input("x", t));
        for (int i = 0; i < 10; i++) {
            v = b.add(new Op.Unary(Op.UnaryFn.EXP), v);
        }
        OpGraph g = b.build(List.of(v));
        ArenaPlan plan = ArenaPlanner.plan(Liveness.analyze(g, FusionPlan.unfused(g)), g.size());
        assertThat(plan.intermediateBytes()).isEqualTo(10 * 4000);
        assertThat(plan.peakBytes()).isEqualTo(4032 + 4000);
        assertThat(plan.offset(0)).isEqualTo(-1);   // inputs live outside the arena
        assertValid(g, FusionPlan.unfused(g));
    }

    @Test
    void reshapesShareTheirOperandsStorageAndExtendItsLife() {
        TensorType t = TensorType.of(DType.F32, 4, 4);
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", t));
        int e = b.add(new Op.Unary(Op.UnaryFn.EXP), x);                 // step 0
        int r = b.add(new Op.Reshape(aether.runtime.ir.Shape.of(16)), e); // view, step 1
        int n = b.add(new Op.Unary(Op.UnaryFn.NEG), x);                 // step 2
        int y = b.add(new Op.Binary(Op.BinaryFn.ADD), r, b.add(new Op.Reshape(aether.runtime.ir.Shape.of(16)), n));
        OpGraph g = b.build(List.of(y));
        Liveness live = Liveness.analyze(g, FusionPlan.unfused(g));
        assertThat(live.storage(r)).isEqualTo(e);
        ArenaPlan plan = ArenaPlanner.plan(live, g.size());
        assertThat(plan.offset(r)).isEqualTo(plan.offset(e));
        assertThat(plan.offset(n)).isNotEqualTo(plan.offset(e));   // e is still live through the add
        assertValid(g, FusionPlan.unfused(g));
    }
}
