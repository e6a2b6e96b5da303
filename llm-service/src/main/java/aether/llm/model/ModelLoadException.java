package aether.llm.model;

/**
 * A model file that cannot be run: an unknown architecture, a missing or mis-shaped tensor, a hyper-parameter out of
 * range or a feature this build does not implement. The message names the architecture and the key or tensor, what was
 * expected and what was found.
 */
public final class ModelLoadException extends RuntimeException {

    private final String architecture;

    public ModelLoadException(String architecture, String message) {
        super(architecture + ": " + message);
        this.architecture = architecture;
    }

    /** The GGUF {@code general.architecture} of the model (or "?" where the file has none). */
    public String architecture() {
        return architecture;
    }
}
