package aether.scheduler.compile;

import java.util.Arrays;

/**
 * A pass's result: the new program and where each old node went. {@code mapping[oldId]} is the id of the node in the new
 * program that computes the same value, or -1 when the value is no longer computed (dead code removed).
 */
public record Rewrite(Program program, int[] mapping) {

    public Rewrite {
        mapping = mapping.clone();
        for (int i = 0; i < mapping.length; i++) {
            if (mapping[i] < -1 || mapping[i] >= program.size()) {
                throw new IllegalArgumentException("rewrite: mapping[" + i + "] = " + mapping[i] + " (expected: -1.."
                        + (program.size() - 1) + ")");
            }
        }
    }

    @Override
    public int[] mapping() {
        return mapping.clone();
    }

    /** The new id of old node {@code id}, or -1. */
    public int map(int id) {
        return mapping[id];
    }

    /** The identity rewrite of {@code p}. */
    static Rewrite identity(Program p) {
        int[] m = new int[p.size()];
        for (int i = 0; i < m.length; i++) {
            m[i] = i;
        }
        return new Rewrite(p, m);
    }

    /** {@code this} followed by {@code next}: old ids of this rewrite mapped through both. */
    public Rewrite then(Rewrite next) {
        int[] m = new int[mapping.length];
        Arrays.fill(m, -1);
        for (int i = 0; i < m.length; i++) {
            if (mapping[i] >= 0) {
                m[i] = next.mapping[mapping[i]];
            }
        }
        return new Rewrite(next.program, m);
    }
}
