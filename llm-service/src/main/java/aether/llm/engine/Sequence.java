package aether.llm.engine;

/**
 * One token sequence's state inside an {@link InferenceModel}: the positions it holds in the KV memory. Created by
 * {@link InferenceModel#newSequence()}, grown by {@link InferenceModel#step}. Close it to give its memory back.
 */
public interface Sequence extends AutoCloseable {

    /** Positions held (tokens already run through the model). */
    int length();

    /**
     * Forgets positions {@code [length, length())} so the next step continues at {@code length}: rewinding to a shared
     * prefix, dropping tokens after a stop string, or clearing ({@code truncate(0)}). Frees the blocks no longer used.
     *
     * @throws IllegalArgumentException when {@code length} is negative or beyond {@link #length()}
     */
    void truncate(int length);

    boolean isClosed();

    /** Returns the KV memory to the pool; idempotent. */
    @Override
    void close();
}
