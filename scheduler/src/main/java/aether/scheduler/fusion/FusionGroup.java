package aether.scheduler.fusion;

import java.util.List;

/**
 * Nodes executed as one kernel. Only {@link #root} is written to memory; every other member is consumed inside the
 * group. {@link #anchor} is the one non-elementwise member (a matmul, norm or softmax), or -1 for a pure elementwise
 * chain; {@link #prologue} computes the anchor's main operand per row, {@link #epilogue} is applied to each anchor row
 * before it is stored (for a pure chain every member is in the epilogue).
 *
 * @param id       index in {@link FusionPlan#groups()} (groups are in execution order)
 * @param kind     what the kernel does
 * @param root     the node whose value the group writes
 * @param anchor   the matmul / norm / softmax node, or -1
 * @param prologue elementwise members feeding the anchor, ascending ids
 * @param epilogue elementwise members after the anchor (or all members of a chain), ascending ids
 */
public record FusionGroup(int id, Kind kind, int root, int anchor, List<Integer> prologue, List<Integer> epilogue) {

    public enum Kind {
        /** One op that no rule fuses, run alone. */
        SINGLE,
        /** Elementwise ops evaluated per output element without intermediate buffers. */
        ELEMENTWISE,
        /** matmul, then an elementwise epilogue per output row (bias, activation). */
        MATMUL_EPILOGUE,
        /** rms_norm / layer_norm / softmax with an elementwise prologue (mask) and/or epilogue (weight). */
        ROW_OP
    }

    public FusionGroup {
        prologue = List.copyOf(prologue);
        epilogue = List.copyOf(epilogue);
    }

    /** Every member, ascending. */
    public List<Integer> members() {
        java.util.TreeSet<Integer> all = new java.util.TreeSet<>(prologue);
        all.addAll(epilogue);
        if (anchor >= 0) {
            all.add(anchor);
        }
        all.add(root);
        return List.copyOf(all);
    }

    public boolean isFused() {
        return members().size() > 1;
    }
}
