package aether.runtime.protocol;

import java.util.Objects;

/** The value bound to {@code Input} node {@code node} of a job's graph. */
public record JobInput(int node, TensorPayload value) {
    public JobInput {
        Objects.requireNonNull(value, "value");
    }
}
