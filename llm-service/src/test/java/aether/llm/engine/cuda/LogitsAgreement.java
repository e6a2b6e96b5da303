package aether.llm.engine.cuda;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * How one engine's logits agree with a reference's, checked the same way by every GPU engine test: every logit
 * finite, the relative L2 error {@code ||got - ref|| / ||ref||} below a tolerance, and the reference's greedy token
 * wherever its leader is ahead of the second by more than {@code margin} times the largest difference (closer calls
 * may flip on rounding alone).
 *
 * @param relativeError the relative L2 error
 * @param maxDiff       the largest absolute difference of one logit
 * @param greedyChecked whether the greedy token was clear enough to compare (and was the same)
 */
record LogitsAgreement(double relativeError, double maxDiff, boolean greedyChecked) {

    /**
     * Measures and asserts; {@code tolerance} may be {@link Double#POSITIVE_INFINITY} for a caller that asserts over
     * many steps itself.
     */
    static LogitsAgreement check(float[] ref, float[] got, double tolerance, double margin, String what) {
        assertThat(got).as("%s: logits", what).isNotNull();
        double num = 0, den = 0, maxDiff = 0;
        for (int i = 0; i < ref.length; i++) {
            assertThat(Float.isFinite(got[i])).as("%s: logit %d finite", what, i).isTrue();
            double d = got[i] - ref[i];
            num += d * d;
            den += (double) ref[i] * ref[i];
            maxDiff = Math.max(maxDiff, Math.abs(d));
        }
        double rel = Math.sqrt(num / den);
        assertThat(rel).as("%s: ||got - ref|| / ||ref||", what).isLessThan(tolerance);
        int best = argmax(ref);
        float second = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < ref.length; i++) {
            if (i != best) {
                second = Math.max(second, ref[i]);
            }
        }
        boolean clear = ref[best] - second > margin * maxDiff;
        if (clear) {
            assertThat(argmax(got)).as("%s: greedy token", what).isEqualTo(best);
        }
        return new LogitsAgreement(rel, maxDiff, clear);
    }

    /** The first largest. */
    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
