package aether.scheduler.compile;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API versions of the elementwise loops whose lanes are independent (so results are bit-identical to the scalar
 * loops): add, sub, mul, div, neg, relu, multiply by a float. Only loaded when {@link #ENABLED}; {@code
 * -Daether.vector=false} forces the scalar loops, and tests compare both.
 */
final class VectorLoops {

    /** True unless {@code aether.vector=false} or the {@code jdk.incubator.vector} module is missing. */
    static final boolean ENABLED = enabled();

    private static boolean enabled() {
        if ("false".equals(System.getProperty("aether.vector"))) {
            return false;
        }
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            System.getLogger(VectorLoops.class.getName()).log(System.Logger.Level.WARNING,
                    "jdk.incubator.vector is not available: compiled graphs use scalar loops (run with"
                            + " --add-modules=jdk.incubator.vector)");
            return false;
        }
        return true;
    }

    private VectorLoops() {}

    /** Kernels touching FloatVector live here so the class loads only when the module is present. */
    static final class Impl {
        private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

        private Impl() {}

        static void add(float[] a, float[] b, float[] d, int len) {
            int i = 0;
            for (int bound = F.loopBound(len); i < bound; i += F.length()) {
                FloatVector.fromArray(F, a, i).add(FloatVector.fromArray(F, b, i)).intoArray(d, i);
            }
            for (; i < len; i++) {
                d[i] = a[i] + b[i];
            }
        }

        static void sub(float[] a, float[] b, float[] d, int len) {
            int i = 0;
            for (int bound = F.loopBound(len); i < bound; i += F.length()) {
                FloatVector.fromArray(F, a, i).sub(FloatVector.fromArray(F, b, i)).intoArray(d, i);
            }
            for (; i < len; i++) {
                d[i] = a[i] - b[i];
            }
        }

        static void mul(float[] a, float[] b, float[] d, int len) {
            int i = 0;
            for (int bound = F.loopBound(len); i < bound; i += F.length()) {
                FloatVector.fromArray(F, a, i).mul(FloatVector.fromArray(F, b, i)).intoArray(d, i);
            }
            for (; i < len; i++) {
                d[i] = a[i] * b[i];
            }
        }

        static void div(float[] a, float[] b, float[] d, int len) {
            int i = 0;
            for (int bound = F.loopBound(len); i < bound; i += F.length()) {
                FloatVector.fromArray(F, a, i).div(FloatVector.fromArray(F, b, i)).intoArray(d, i);
            }
            for (; i < len; i++) {
                d[i] = a[i] / b[i];
            }
        }

        static void mulScalar(float[] a, float f, float[] d, int len) {
            int i = 0;
            for (int bound = F.loopBound(len); i < bound; i += F.length()) {
                FloatVector.fromArray(F, a, i).mul(f).intoArray(d, i);
            }
            for (; i < len; i++) {
                d[i] = a[i] * f;
            }
        }

        static void neg(float[] a, float[] d, int len) {
            int i = 0;
            for (int bound = F.loopBound(len); i < bound; i += F.length()) {
                FloatVector.fromArray(F, a, i).neg().intoArray(d, i);
            }
            for (; i < len; i++) {
                d[i] = -a[i];
            }
        }

        /** x > 0 ? x : +0 (NaN and -0 give +0, as the reference's {@code x > 0 ? x : 0}). */
        static void relu(float[] a, float[] d, int len) {
            int i = 0;
            FloatVector zero = FloatVector.zero(F);
            for (int bound = F.loopBound(len); i < bound; i += F.length()) {
                FloatVector v = FloatVector.fromArray(F, a, i);
                zero.blend(v, v.compare(VectorOperators.GT, 0f)).intoArray(d, i);
            }
            for (; i < len; i++) {
                d[i] = a[i] > 0 ? a[i] : 0;
            }
        }
    }
}
