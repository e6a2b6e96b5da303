package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.OpGraph;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.memory.RandomGraphs;
import java.util.List;
import java.util.Map;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

/**
 * Random graphs full of redundancy keep their results bit for bit through the standard pipeline and through compiled
 * fused and unfused execution. (Ignoring signed zeros would not be safe here: a flipped zero sign becomes a flipped
 * infinity after a division, which is exactly how this property first failed.)
 */
class PipelinePropertyTest {

    private static PassManager strictPipeline() {
        return PassManager.standard();
    }

    @Property(tries = 150)
    void passesPreserveResults(@ForAll long seed, @ForAll @IntRange(min = 1, max = 25) int ops) {
        OpGraph g = RandomGraphs.generate(seed, ops, true);
        Program p = Program.of(g);
        Map<Integer, TensorValue> in = Programs.randomInputs(p, new Random(seed));
        List<HostTensor> expected = Programs.evaluate(p, in);

        PassManager.Result optimized = PassManager.standard().run(p);
        List<HostTensor> actual = Programs.evaluate(optimized.program(), Programs.remap(in, optimized.rewrite()));
        for (int i = 0; i < expected.size(); i++) {
            assertThat(Programs.bits(actual.get(i))).as("output %d\n%s", i, g.dump())
                    .containsExactly(Programs.bits(expected.get(i)));
        }
        assertThat(optimized.program().size()).isLessThanOrEqualTo(p.size());
    }

    @Property(tries = 60)
    void compiledExecutionMatchesTheReference(@ForAll long seed, @ForAll @IntRange(min = 1, max = 25) int ops) {
        OpGraph g = RandomGraphs.generate(seed, ops, true);
        Program p = Program.of(g);
        PassManager.Result optimized = strictPipeline().run(p);
        Map<Integer, TensorValue> in = Programs.randomInputs(p, new Random(seed));
        List<HostTensor> expected = Programs.evaluate(p, in);
        for (Compiler c : List.of(new Compiler(strictPipeline(), null),
                new Compiler(strictPipeline(), new aether.scheduler.fusion.FusionPlanner()))) {
            try (CompiledGraph cg = c.compile(p)) {
                for (Map.Entry<Integer, TensorValue> e : in.entrySet()) {
                    cg.set(e.getKey(), ((HostTensor) e.getValue()).toFloatArray());
                }
                cg.run();
                for (int i = 0; i < expected.size(); i++) {
                    assertThat(cg.outputFloats(i)).as("output %d\n%s", i, cg.dump())
                            .isEqualTo(expected.get(i).toFloatArray());
                }
            }
        }
        assertThat(optimized.records()).hasSize(7);
    }
}
