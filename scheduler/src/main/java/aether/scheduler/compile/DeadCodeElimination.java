package aether.scheduler.compile;

import java.util.HashMap;
import java.util.Map;
import aether.scheduler.exec.TensorValue;

/**
 * Drops every node the outputs do not depend on (including unused inputs and constants) and renumbers the rest densely
 * in the same order. The IR has no ops with side effects, so reachability from the outputs is the whole liveness rule.
 */
public final class DeadCodeElimination implements Pass {

    @Override
    public String name() {
        return "dead-code-elimination";
    }

    @Override
    public Rewrite run(Program program) {
        var pruned = program.graph().prune();
        int[] mapping = pruned.mapping();
        Map<Integer, TensorValue> constants = new HashMap<>();
        for (Map.Entry<Integer, TensorValue> e : program.constants().entrySet()) {
            if (mapping[e.getKey()] >= 0) {
                constants.put(mapping[e.getKey()], e.getValue());
            }
        }
        return new Rewrite(new Program(pruned.graph(), constants), mapping);
    }
}
