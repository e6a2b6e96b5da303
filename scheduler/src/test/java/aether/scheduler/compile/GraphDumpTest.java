package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.scheduler.fusion.FusionPlan;
import aether.scheduler.fusion.FusionPlanner;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class GraphDumpTest {

    @Test
    void textHasOneLinePerNodeWithAttributesTypesGroupsAndOffsets() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(2, 4), DType.F32);
        Tensor w = g.tensor(new float[4 * 4], Shape.of(4, 4));
        Tensor y = x.linear(w).add(x).gelu().softmax(null, 0.5, 30);
        Program p = Program.from(g, List.of(w), y).program();
        try (CompiledGraph cg = Compiler.standard().compile(p)) {
            String text = cg.dump();
            assertThat(text).contains("%0 = input{x}() : f32[2, 4]")
                    .contains("const")
                    .contains("softmax{scale=0.5, softCap=30.0}")
                    .contains("[g1 row_op prologue]")
                    .contains("[g1 row_op root]")
                    .contains("output")
                    .contains("fuse %")
                    .contains("arena: peak")
                    .containsPattern("@\\d+\\+\\d+");
            long nodeLines = text.lines().filter(l -> l.startsWith("%")).count();
            assertThat(nodeLines).isEqualTo(cg.program().size());
        }
    }

    @Test
    void dotDrawsFusedGroupsAsClusters() {
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(8), DType.F32);
        Tensor y = x.exp().add(x).tanh();
        var og = g.toOpGraph(y);
        FusionPlan plan = new FusionPlanner().plan(og);
        String dot = GraphDump.dot(og, java.util.Set.of(), plan);
        assertThat(dot).startsWith("digraph aether {").contains("subgraph cluster_g0").contains("n0 -> n1;")
                .contains("label=\"g0 elementwise\"").endsWith("}\n");
        assertThat(g.dot()).contains("n1 -> n2;").doesNotContain("cluster");
    }
}
