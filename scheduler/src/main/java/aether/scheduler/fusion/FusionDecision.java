package aether.scheduler.fusion;

import java.util.Locale;

/**
 * One question the planner asked the cost model: should {@code node} join the group rooted at {@code root}?
 *
 * @param node      the candidate
 * @param root      root of the group it would join
 * @param fused     the answer
 * @param fusedNs   estimated time of the group with the node
 * @param unfusedNs estimated time of the group without it plus the node alone
 * @param rule      the pattern that proposed it (elementwise, epilogue, prologue)
 */
public record FusionDecision(int node, int root, boolean fused, double fusedNs, double unfusedNs, String rule) {

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s %%%d into %%%d (%s): fused %.1f ns %s unfused %.1f ns",
                fused ? "fuse" : "keep", node, root, rule, fusedNs, fused ? "<" : ">=", unfusedNs);
    }
}
