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
 * Random graphs full of redundancy keep their results through the whole pipeline: the standard passes (equal values;
 * only the sign of a zero may change, see {@link Simplify}), the strict-zeros pipeline (bit-identical), and compiled
 * fused and unfused execution (bit-identical to the reference on the optimized program).
 */
class PipelinePropertyTest {

    private static PassManager strictPipeline() {
        return new PassManager(List.of(Simplify.strictSignedZeros(), new DeadCodeElimination(),
                new CommonSubexpressions(), new ConstantFolding(), new DeadCodeElimination(), new WeightLayout(),
                new DeadCodeElimination()));
    }

    @Property(tries = 150)
    void passesPreserveResults(@ForAll long seed, @ForAll @IntRange(min = 1, max = 25) int ops) {
        OpGraph g = RandomGraphs.generate(seed, ops, true);
        Program p = Program.of(g);
        Map<Integer, TensorValue> in = Programs.randomInputs(p, new Random(seed));
        List<HostTensor> expected = Programs.evaluate(p, in);

        PassManager.Result strict = strictPipeline().run(p);
        List<HostTensor> exact = Programs.evaluate(strict.program(), Programs.remap(in, strict.rewrite()));
        for (int i = 0; i < expected.size(); i++) {
            assertThat(Programs.bits(exact.get(i))).as("strict pipeline output %d\n%s", i, g.dump())
                    .containsExactly(Programs.bits(expected.get(i)));
        }
        assertThat(strict.program().size()).isLessThanOrEqualTo(p.size());

        PassManager.Result standard = PassManager.standard().run(p);
        List<HostTensor> actual = Programs.evaluate(standard.program(), Programs.remap(in, standard.rewrite()));
        for (int i = 0; i < expected.size(); i++) {
            double[] a = actual.get(i).toDoubleArray();
            double[] e = expected.get(i).toDoubleArray();
            assertThat(a).hasSameSizeAs(e);
            for (int j = 0; j < e.length; j++) {
                boolean same = a[j] == e[j] || (Double.isNaN(a[j]) && Double.isNaN(e[j]));
                assertThat(same).as("output %d[%d]: %s vs %s\n%s", i, j, a[j], e[j], g.dump()).isTrue();
            }
        }
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
