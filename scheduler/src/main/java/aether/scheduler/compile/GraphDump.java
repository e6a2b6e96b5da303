package aether.scheduler.compile;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.scheduler.fusion.FusionDecision;
import aether.scheduler.fusion.FusionGroup;
import aether.scheduler.fusion.FusionPlan;
import aether.scheduler.memory.ArenaPlan;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Human-readable views of a graph: {@link #text} (one line per node with op, attributes, inputs, type, fusion group and
 * arena offset, then the cost-model decisions) and {@link #dot} (Graphviz; fused groups drawn as clusters). The fusion
 * plan and arena plan are optional.
 */
public final class GraphDump {

    private GraphDump() {}

    public static String text(OpGraph graph) {
        return text(graph, Set.of(), null, null);
    }

    public static String text(Program program, FusionPlan fusion, ArenaPlan arena) {
        return text(program.graph(), program.constants().keySet(), fusion, arena);
    }

    /**
     * @param constants ids of constant inputs (marked {@code const})
     * @param fusion    may be null
     * @param arena     may be null
     */
    public static String text(OpGraph graph, Set<Integer> constants, FusionPlan fusion, ArenaPlan arena) {
        StringBuilder sb = new StringBuilder();
        Set<Integer> outputs = new HashSet<>(graph.outputs());
        for (Node n : graph.nodes()) {
            sb.append('%').append(n.id()).append(" = ").append(opText(n.op()));
            sb.append('(');
            for (int i = 0; i < n.inputs().size(); i++) {
                sb.append(i == 0 ? "" : ", ").append('%').append(n.input(i));
            }
            sb.append(") : ").append(n.type());
            if (constants.contains(n.id())) {
                sb.append("  const");
            }
            if (outputs.contains(n.id())) {
                sb.append("  output");
            }
            if (fusion != null && fusion.group(n.id()) >= 0) {
                FusionGroup g = fusion.groups().get(fusion.group(n.id()));
                sb.append("  [g").append(g.id()).append(' ').append(g.kind().name().toLowerCase(java.util.Locale.ROOT));
                sb.append(g.root() == n.id() ? " root" : g.anchor() == n.id() ? " anchor"
                        : g.prologue().contains(n.id()) ? " prologue" : " fused");
                sb.append(']');
            }
            if (arena != null && arena.offset(n.id()) >= 0) {
                sb.append("  @").append(arena.offset(n.id())).append('+').append(arena.bytes(n.id()));
            }
            sb.append('\n');
        }
        sb.append("outputs:");
        for (int o : graph.outputs()) {
            sb.append(" %").append(o);
        }
        sb.append('\n');
        if (fusion != null) {
            sb.append("fusion: ").append(fusion.dispatches()).append(" kernels for ")
                    .append(computed(graph)).append(" ops\n");
            for (FusionDecision d : fusion.decisions()) {
                sb.append("  ").append(d).append('\n');
            }
        }
        if (arena != null) {
            sb.append("arena: peak ").append(arena.peakBytes()).append(" bytes, intermediates ")
                    .append(arena.intermediateBytes()).append(" bytes\n");
        }
        return sb.toString();
    }

    private static int computed(OpGraph graph) {
        int c = 0;
        for (Node n : graph.nodes()) {
            if (!FusionPlan.isLeaf(n.op())) {
                c++;
            }
        }
        return c;
    }

    /** The op name with its attributes, e.g. {@code softmax{scale=0.125, softCap=0.0}}. */
    static String opText(Op op) {
        if (op instanceof Op.Input in) {
            return "input{" + in.label() + "}";
        }
        String s = op.toString();
        int open = s.indexOf('[');
        String attrs = open < 0 ? "" : s.substring(open + 1, s.length() - 1);
        if (op instanceof Op.Unary || op instanceof Op.Binary || op instanceof Op.MatMul) {
            attrs = "";   // the name already says it
        } else if (op instanceof Op.Full f) {
            attrs = "value=" + f.value();
        }
        return attrs.isEmpty() ? op.name() : op.name() + "{" + attrs + "}";
    }

    public static String dot(OpGraph graph) {
        return dot(graph, Set.of(), null);
    }

    public static String dot(Program program, FusionPlan fusion) {
        return dot(program.graph(), program.constants().keySet(), fusion);
    }

    /** Graphviz source; nodes of a fused group sit in a cluster labelled with the group's kind and id. */
    public static String dot(OpGraph graph, Set<Integer> constants, FusionPlan fusion) {
        StringBuilder sb = new StringBuilder("digraph aether {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
        Set<Integer> outputs = new HashSet<>(graph.outputs());
        Set<Integer> clustered = new HashSet<>();
        if (fusion != null) {
            for (FusionGroup g : fusion.groups()) {
                if (!g.isFused()) {
                    continue;
                }
                sb.append("  subgraph cluster_g").append(g.id()).append(" {\n    label=\"g").append(g.id()).append(' ')
                        .append(g.kind().name().toLowerCase(java.util.Locale.ROOT)).append("\";\n    style=filled;"
                                + " color=lightgrey;\n");
                for (int m : g.members()) {
                    sb.append("    ").append(nodeDecl(graph.node(m), constants, outputs)).append('\n');
                    clustered.add(m);
                }
                sb.append("  }\n");
            }
        }
        for (Node n : graph.nodes()) {
            if (!clustered.contains(n.id())) {
                sb.append("  ").append(nodeDecl(n, constants, outputs)).append('\n');
            }
        }
        for (Node n : graph.nodes()) {
            List<Integer> in = n.inputs();
            for (int i = 0; i < in.size(); i++) {
                sb.append("  n").append(in.get(i)).append(" -> n").append(n.id()).append(";\n");
            }
        }
        sb.append("}\n");
        return sb.toString();
    }

    private static String nodeDecl(Node n, Set<Integer> constants, Set<Integer> outputs) {
        String label = "%" + n.id() + " " + opText(n.op()) + "\\n" + n.type();
        String style = outputs.contains(n.id()) ? ", peripheries=2"
                : constants.contains(n.id()) ? ", style=dashed" : "";
        if (n.op() instanceof Op.Input && !constants.contains(n.id())) {
            style += ", shape=ellipse";
        }
        return "n" + n.id() + " [label=\"" + label.replace("\"", "\\\"") + "\"" + style + "];";
    }
}
