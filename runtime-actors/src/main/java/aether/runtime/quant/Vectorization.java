package aether.runtime.quant;

import jdk.incubator.vector.FloatVector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decides once whether the Vector API fast paths run. They need the {@code jdk.incubator.vector} module
 * ({@code --add-modules=jdk.incubator.vector}), a preferred vector size of at least 256 bits (the block kernels are
 * written for 8 float lanes), and the system property {@code aether.vector} not set to {@code false} (which forces the
 * scalar reference, e.g. to compare both in tests).
 */
final class Vectorization {

    private static final Logger LOG = LoggerFactory.getLogger(Vectorization.class);

    /** True if codecs' {@code INSTANCE}s use their Vector API paths. */
    static final boolean ENABLED = decide();

    private Vectorization() {}

    /** True if the vector classes can be used at all in this JVM (tests that force the vector path check this). */
    static boolean available() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent() && wideEnough();
    }

    private static boolean decide() {
        if ("false".equalsIgnoreCase(System.getProperty("aether.vector"))) {
            return false;
        }
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            LOG.warn("jdk.incubator.vector is not available: quantized blocks are decoded with scalar code; "
                    + "start the JVM with --add-modules=jdk.incubator.vector");
            return false;
        }
        if (!wideEnough()) {
            LOG.warn("preferred vector size is below 256 bits: quantized blocks are decoded with scalar code");
            return false;
        }
        return true;
    }

    private static boolean wideEnough() {
        return FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 256;
    }
}
