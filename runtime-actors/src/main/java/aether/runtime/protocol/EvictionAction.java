package aether.runtime.protocol;

/** What the worker owning a copy must do to evict it. None of them loses the buffer's last current copy. */
public enum EvictionAction {
    /** The copy is the only current one and lives on a device: copy it to host memory, then free the device memory. */
    COPY_TO_HOST_THEN_FREE,
    /** Another current copy exists (or the model file holds the bytes): free this copy's memory. */
    FREE,
    /** A weight's host copy is a mapping of the model file: unmap it; it can be re-mapped later. */
    DROP_MAPPING
}
