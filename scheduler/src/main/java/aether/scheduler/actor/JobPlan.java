package aether.scheduler.actor;

import aether.runtime.ir.OpGraph;
import aether.runtime.protocol.SegmentSpec;
import aether.scheduler.exec.TensorValue;
import java.util.List;
import java.util.Map;

/**
 * A compiled job split into segments. Values are named by their node id in the compiled graph {@code graph}: each
 * segment reads {@code inputs} and writes {@code outputs} (both compiled ids), in the order of its spec's input nodes
 * and graph outputs.
 *
 * @param graph        the job graph after the compiler's passes
 * @param submittedOf  {@code submittedOf[compiledId]}: the submitted graph's node for that value, or -1
 * @param jobInputs    compiled id of each bound {@code Input} -> the submitted graph's input node that binds it
 * @param constants    values of {@code Input} nodes the passes created (folded constants), by compiled id
 * @param outputs      compiled ids of the job's outputs, in the submitted order
 * @param segments     in a topological order: a segment only reads values of earlier segments and job inputs
 */
record JobPlan(OpGraph graph, int[] submittedOf, Map<Integer, Integer> jobInputs, Map<Integer, TensorValue> constants,
        List<Integer> outputs, List<Segment> segments) {

    /**
     * One dispatched unit.
     *
     * @param dependsOn indices of the segments producing its inputs
     * @param outputBytes bytes its outputs need on the worker
     */
    record Segment(SegmentSpec spec, List<Integer> inputs, List<Integer> outputs, List<Integer> dependsOn,
            long outputBytes) {}
}
