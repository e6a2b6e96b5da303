package aether.runtime.protocol;

import java.util.UUID;

/** Names one compute job across the cluster: chosen by the client, unique per submission. */
public record JobId(String value) {
    public JobId {
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException("job id: '" + value + "' (expected: a non-blank string)");
        }
    }

    public static JobId random() {
        return new JobId(UUID.randomUUID().toString());
    }

    @Override
    public String toString() {
        return "job " + value;
    }
}
