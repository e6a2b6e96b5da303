package aether.llm.cli;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Finds the model shipped in the repository ({@code models/stories260K.gguf}, MIT, see
 * {@code models/stories260K.LICENSE}), used when a command gets no {@code -m}. The file is read in place (mmapped), so
 * it is looked up on disk rather than packaged as a classpath resource: first under {@code $aether.home/models}
 * (the {@code ./aether} launcher sets {@code -Daether.home} to its own directory), then in the parents of the
 * directory this class was loaded from (a jar under {@code cluster-config/target/app/lib}, or {@code target/classes}),
 * then in the working directory and its parents. That finds it from any working directory.
 */
public final class BundledModel {

    public static final String RELATIVE_PATH = "models/stories260K.gguf";
    public static final String HOME_PROPERTY = "aether.home";

    private BundledModel() {}

    /**
     * The bundled model's path.
     *
     * @throws IllegalStateException naming every place looked at, when it is nowhere
     */
    public static Path locate() {
        List<Path> tried = new ArrayList<>();
        String home = System.getProperty(HOME_PROPERTY);
        if (home != null && !home.isBlank()) {
            Path p = Path.of(home).resolve(RELATIVE_PATH);
            if (Files.isRegularFile(p)) {
                return p;
            }
            tried.add(p);
        }
        for (Path start : starts()) {
            for (Path dir = start; dir != null; dir = dir.getParent()) {
                Path p = dir.resolve(RELATIVE_PATH);
                if (Files.isRegularFile(p)) {
                    return p;
                }
            }
            tried.add(start.resolve("(parents)").resolve(RELATIVE_PATH));
        }
        throw new IllegalStateException("no -m MODEL given and the bundled model " + RELATIVE_PATH
                + " was not found (looked in " + tried + "; set -D" + HOME_PROPERTY + "=REPO_DIR or pass -m)");
    }

    private static List<Path> starts() {
        List<Path> starts = new ArrayList<>();
        try {
            var source = BundledModel.class.getProtectionDomain().getCodeSource();
            if (source != null) {
                starts.add(Path.of(source.getLocation().toURI()).toAbsolutePath());
            }
        } catch (URISyntaxException | SecurityException | IllegalArgumentException e) {
            // not loaded from a file: the working directory below still applies
        }
        starts.add(Path.of("").toAbsolutePath());
        return starts;
    }
}
