package aether.scheduler.compile;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Merges structurally identical nodes: the same op (record equality, so {@code full(0.0)} and {@code full(-0.0)} stay
 * apart) over the same inputs after merging. Inputs are never merged, even with equal labels and types: two inputs are
 * two values. One forward walk suffices because inputs precede their readers. Merged nodes are not emitted, so the new
 * graph is smaller by the number of duplicates.
 */
public final class CommonSubexpressions implements Pass {

    @Override
    public String name() {
        return "common-subexpressions";
    }

    private record Key(Op op, List<Integer> inputs) {}

    @Override
    public Rewrite run(Program program) {
        Rewriter rw = new Rewriter(program);
        Map<Key, Integer> seen = new HashMap<>();
        for (Node n : program.graph().nodes()) {
            if (n.op() instanceof Op.Input) {
                rw.copy(n);
                continue;
            }
            int[] in = rw.mappedInputs(n);
            Integer[] boxed = new Integer[in.length];
            for (int i = 0; i < in.length; i++) {
                boxed[i] = in[i];
            }
            Key key = new Key(n.op(), List.of(boxed));
            Integer existing = seen.get(key);
            if (existing != null) {
                rw.replace(n.id(), existing);
            } else {
                seen.put(key, rw.copy(n));
            }
        }
        return rw.finish();
    }
}
