package aether.runtime.protocol;

/**
 * Where a buffer's bytes come from, which decides what eviction may do with a copy.
 * A {@link #WEIGHT} is backed by its memory-mapped model file until it is written: its host mapping can be dropped and
 * re-mapped, its device copies freed and uploaded again. {@link #ACTIVATION} and {@link #INTERMEDIATE} buffers exist
 * only in their copies: the last copy is never dropped.
 */
public enum BufferOrigin {
    WEIGHT,
    ACTIVATION,
    INTERMEDIATE
}
