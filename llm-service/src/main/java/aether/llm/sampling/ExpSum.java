package aether.llm.sampling;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code sum_i exp(x[i] - max)} over a whole vocabulary, the normaliser of a log-softmax. The Vector API path
 * evaluates {@code exp} in float lanes (the JDK's SVML intrinsics) and adds blocks of 1,024 terms in float, then the
 * block sums in double: each term is in [0, 1], so a block's float sum is within ~1e-6 relative of the exact one. The
 * scalar reference ({@code -Daether.vector=false}, or without {@code jdk.incubator.vector}) uses {@link Math#exp} and
 * a double sum; tests compare both.
 */
final class ExpSum {

    /** Whether the Vector API path runs (decided once). */
    static final boolean VECTOR = decide();

    private ExpSum() {}

    private static boolean decide() {
        if ("false".equalsIgnoreCase(System.getProperty("aether.vector"))) {
            return false;
        }
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            System.getLogger(ExpSum.class.getName()).log(System.Logger.Level.WARNING,
                    "jdk.incubator.vector is not available: log-softmax sums use scalar code; "
                            + "start the JVM with --add-modules=jdk.incubator.vector");
            return false;
        }
        return Lanes.F.length() >= 8;
    }

    static double sum(float[] x, int offset, int n, float max) {
        return VECTOR ? Lanes.sum(x, offset, n, max) : scalar(x, offset, n, max);
    }

    static double scalar(float[] x, int offset, int n, float max) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp((double) x[offset + i] - max);
        }
        return sum;
    }

    /** The vector path, whatever {@link #VECTOR} says (tests). */
    static double vector(float[] x, int offset, int n, float max) {
        return Lanes.sum(x, offset, n, max);
    }

    /** Holds the Vector API code, so that this class loads without the incubator module. */
    private static final class Lanes {
        static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
        static final int BLOCK = 1024;

        static double sum(float[] x, int offset, int n, float max) {
            FloatVector m = FloatVector.broadcast(F, max);
            double total = 0;
            int i = 0;
            int bound = n - n % F.length();
            while (i < bound) {
                int blockEnd = Math.min(bound, i + BLOCK);
                FloatVector acc = FloatVector.zero(F);
                for (; i < blockEnd; i += F.length()) {
                    acc = acc.add(FloatVector.fromArray(F, x, offset + i).sub(m).lanewise(VectorOperators.EXP));
                }
                total += acc.reduceLanes(VectorOperators.ADD);    // one reduction per block, in double from here
            }
            for (; i < n; i++) {
                total += Math.exp((double) x[offset + i] - max);
            }
            return total;
        }
    }
}
