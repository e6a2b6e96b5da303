package aether.device.cpu.kernel;

/**
 * Whether the vector kernels run: {@code -Daether.vector=false} forces the scalar references (tests compare both);
 * without the {@code jdk.incubator.vector} module, or on a CPU narrower than 256-bit float vectors (the kernels use
 * fixed 256-bit shapes), the scalar path runs and one warning names the reason. Vector classes are only touched
 * after this check, so the scalar path loads without the incubator module.
 */
public final class VectorSupport {
    private static final boolean DEFAULT = detect();

    private VectorSupport() {}

    /** The process-wide default: {@code aether.vector} (default true) and what the JVM and CPU support. */
    public static boolean enabledByDefault() {
        return DEFAULT;
    }

    /** Whether vector kernels can run at all in this JVM, ignoring {@code aether.vector}. */
    public static boolean available() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return false;
        }
        return jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 256;
    }

    private static boolean detect() {
        if (!Boolean.parseBoolean(System.getProperty("aether.vector", "true"))) {
            return false;
        }
        if (available()) {
            return true;
        }
        System.getLogger(VectorSupport.class.getName()).log(System.Logger.Level.WARNING,
                "Vector kernels disabled: needs --add-modules=jdk.incubator.vector and 256-bit vectors; using scalar kernels");
        return false;
    }
}
