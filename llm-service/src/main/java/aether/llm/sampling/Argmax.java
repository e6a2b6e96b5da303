package aether.llm.sampling;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Greedy token choice: the first largest logit. The one definition shared by {@link Sampler}'s greedy path and the
 * engines' argmax-only steps ({@code InferenceModel.step(batch, logits, logitsWanted, argmaxOut)}), so a token taken on
 * the device and one sampled on the host can never differ. With the Vector API ({@link #VECTOR}) a whole vocabulary
 * takes two vector passes (the maximum, then its first index) instead of the scalar loop's compare-and-branch per
 * logit; the scalar loop remains the reference and reports bad logits.
 */
public final class Argmax {

    private Argmax() {}

    /**
     * The index (relative to {@code offset}) of the first largest of {@code logits[offset, offset + n)}: strict {@code
     * >}, so ties keep the lower id, as llama.cpp's greedy sampler.
     *
     * @throws IllegalStateException when a logit is NaN or +Infinity ("logit of token i is NaN"), or every logit is
     *                               -Infinity (every token banned)
     */
    public static int first(float[] logits, int offset, int n) {
        java.util.Objects.checkFromIndexSize(offset, n, logits.length);
        if (n < 1) {
            throw new IllegalArgumentException("argmax of " + n + " logits (expected at least 1)");
        }
        if (VECTOR && n >= VECTOR_MIN) {
            int best = Lanes.first(logits, offset, n);
            if (best >= 0) {
                return best;
            }   // NaN, +Infinity or all -Infinity: the scalar loop names the culprit
        }
        return scalar(logits, offset, n);
    }

    /**
     * Whether the Vector API path runs: only with {@code -Daether.argmax.vector=true} (and when {@link ExpSum}'s
     * does). Off by default: in the engine's decode loop it allocated 92,160 bytes per step (boxed vectors: C2 left
     * it unintrinsified there, and the zero-allocation tests, QuantizedDecodeAllocationTest and
     * PagedInferenceModelTest, caught it), for a gain of ~5 µs per 32k-vocabulary row measured on a loaded machine.
     */
    static final boolean VECTOR = ExpSum.VECTOR && Boolean.getBoolean("aether.argmax.vector");
    private static final int VECTOR_MIN = 64;

    /** The scalar reference: one pass, strict {@code >}. */
    static int scalar(float[] logits, int offset, int n) {
        int best = 0;
        float bestLogit = logits[offset];
        boolean bad = false;
        for (int id = 0; id < n; id++) {
            float l = logits[offset + id];
            bad |= l != l | l == Float.POSITIVE_INFINITY;   // branch-free here; the culprit is found below
            if (l > bestLogit) {
                best = id;
                bestLogit = l;
            }
        }
        if (bad) {
            for (int id = 0; id < n; id++) {
                float l = logits[offset + id];
                if (Float.isNaN(l) || l == Float.POSITIVE_INFINITY) {
                    throw new IllegalStateException("logit of token " + id + " is " + l);
                }
            }
        }
        if (bestLogit == Float.NEGATIVE_INFINITY) {
            throw new IllegalStateException(ALL_BANNED);
        }
        return best;
    }

    /** The vector path whatever {@link #VECTOR} says (tests); -1 where the scalar one must decide. */
    static int vector(float[] logits, int offset, int n) {
        return Lanes.first(logits, offset, n);
    }

    /** Holds the Vector API code, so that this class loads without the incubator module. */
    private static final class Lanes {
        static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

        /**
         * Two passes: the maximum (lanewise max is {@link Math#max}, so a NaN anywhere makes it NaN), then the first
         * index equal to it, which is the scalar loop's answer (ties keep the first; -0 and +0 compare equal in both).
         * -1 when the maximum is NaN, +Infinity or -Infinity.
         */
        static int first(float[] x, int offset, int n) {
            int lanes = F.length();
            int bound = n - n % lanes;
            FloatVector acc = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            int i = 0;
            for (; i < bound; i += lanes) {
                acc = acc.max(FloatVector.fromArray(F, x, offset + i));
            }
            float max = acc.reduceLanes(VectorOperators.MAX);
            for (; i < n; i++) {
                max = Math.max(max, x[offset + i]);
            }
            if (!(max < Float.POSITIVE_INFINITY) || max == Float.NEGATIVE_INFINITY) {
                return -1;
            }
            FloatVector m = FloatVector.broadcast(F, max);
            for (i = 0; i < bound; i += lanes) {
                VectorMask<Float> eq = FloatVector.fromArray(F, x, offset + i).compare(VectorOperators.EQ, m);
                if (eq.anyTrue()) {
                    return i + eq.firstTrue();
                }
            }
            for (; i < n; i++) {
                if (x[offset + i] == max) {
                    return i;
                }
            }
            throw new AssertionError("the maximum " + max + " is in no lane");
        }
    }

    static final String ALL_BANNED = "every candidate token has logit -Infinity (all banned by the logit bias?)";
}
