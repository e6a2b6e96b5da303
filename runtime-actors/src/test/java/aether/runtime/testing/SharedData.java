package aether.runtime.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locates the read-only {@code shared/} folder beside the checkout (llama.cpp goldens, models, vocabularies).
 *
 * <p>Tests that need it call {@link #dir()} or {@link #require(String)}. Outside CI a missing folder skips the test
 * with a message saying why; under CI ({@code CI=true}) it is always present, so a missing one fails the test instead
 * of silently skipping it.
 */
public final class SharedData {

    private SharedData() {}

    /** The shared folder: system property {@code aether.shared.dir}, else {@code ../shared} from the module or repo. */
    public static Path dir() {
        String configured = System.getProperty("aether.shared.dir");
        Path candidate = configured != null ? Path.of(configured) : null;
        if (candidate == null || !Files.isDirectory(candidate)) {
            for (Path p : new Path[] {Path.of("../shared"), Path.of("../../shared")}) {
                if (Files.isDirectory(p.resolve("golden"))) {
                    candidate = p;
                    break;
                }
            }
        }
        boolean present = candidate != null && Files.isDirectory(candidate);
        if (!present && "true".equalsIgnoreCase(System.getenv("CI"))) {
            throw new IllegalStateException("CI=true but the shared folder is missing (looked at "
                    + configured + ", ../shared): golden tests must run under CI");
        }
        assumeTrue(present, "shared/ folder (llama.cpp goldens and models) not found beside the checkout; skipping");
        return candidate.toAbsolutePath().normalize();
    }

    /** A file or folder inside shared/, skipping (or failing under CI) if it is absent. */
    public static Path require(String relative) {
        Path p = dir().resolve(relative);
        if (!Files.exists(p) && "true".equalsIgnoreCase(System.getenv("CI"))) {
            throw new IllegalStateException("CI=true but " + p + " is missing");
        }
        assumeTrue(Files.exists(p), () -> p + " not found; skipping");
        return p;
    }
}
