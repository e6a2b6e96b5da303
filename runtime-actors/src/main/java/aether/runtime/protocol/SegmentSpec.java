package aether.runtime.protocol;

import aether.runtime.ir.OpGraph;
import java.util.List;
import java.util.Objects;

/**
 * A piece of a compiled job that one worker runs as a unit: a standalone graph whose {@code Input} nodes are the
 * segment's inputs (bound, in node order, to the {@code inputs} of {@link WorkerCommand.RunSegment}) and whose outputs
 * are the values other segments or the client need. {@code sourceNodes[i]} is the job-graph node that segment node
 * {@code i} computes (or reads), for failure messages and stats.
 *
 * @param index       the segment's index in its job
 * @param groups      how many fused kernels it holds
 */
public record SegmentSpec(int index, OpGraph graph, List<Integer> sourceNodes, int groups) {
    public SegmentSpec {
        Objects.requireNonNull(graph, "graph");
        sourceNodes = List.copyOf(sourceNodes);
        if (sourceNodes.size() != graph.size()) {
            throw new IllegalArgumentException("segment " + index + ": " + sourceNodes.size() + " source ids for "
                    + graph.size() + " nodes (expected: one per node)");
        }
    }

    /** Ids of the graph's {@code Input} nodes, in order: the i-th is bound to the i-th input reference. */
    public List<Integer> inputNodes() {
        List<Integer> ids = new java.util.ArrayList<>();
        for (aether.runtime.ir.Node n : graph.nodes()) {
            if (n.op() instanceof aether.runtime.ir.Op.Input) {
                ids.add(n.id());
            }
        }
        return ids;
    }
}
