package aether.device.cpu.kernel;

/**
 * Whether the vector kernels run: {@code -Daether.vector=false} forces the scalar references (tests compare both);
 * without the {@code jdk.incubator.vector} module, or on a CPU narrower than 256-bit float vectors (the kernels use
 * fixed 256-bit shapes, and 512-bit ones where {@link #defaultBits()} says so), the scalar path runs and one warning
 * names the reason. Vector classes are only touched
 * after this check, so the scalar path loads without the incubator module.
 */
public final class VectorSupport {
    private static final boolean DEFAULT = detect();

    private VectorSupport() {}

    /**
     * The vector width the kernels that have a 512-bit variant use by default: 512 where the JVM's preferred float
     * species is 512 bits (AVX-512, {@code MaxVectorSize=64}), else 256; {@code -Daether.vector.bits=256} forces the
     * 256-bit kernels (tests run both widths). Read whenever a kernel owner (a {@code Matmul}) is made rather than once
     * per process, so that a benchmark can open the same model at both widths in one JVM ({@code DecodeRace}).
     */
    public static int defaultBits() {
        return detectBits();
    }

    /** Whether 512-bit kernels can run here (preferred float species at least 512 bits). */
    public static boolean wideAvailable() {
        return available() && jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 512;
    }

    private static int detectBits() {
        String forced = System.getProperty("aether.vector.bits", "");
        if (forced.equals("256")) {
            return 256;
        }
        if (!forced.isEmpty() && !forced.equals("512")) {
            throw new IllegalArgumentException("aether.vector.bits: '%s' is not 256 or 512".formatted(forced));
        }
        return wideAvailable() ? 512 : 256;
    }

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
