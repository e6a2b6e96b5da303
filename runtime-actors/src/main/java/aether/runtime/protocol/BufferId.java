package aether.runtime.protocol;

/** Identifies one logical buffer (a weight tensor, an activation) across its copies and versions. */
public record BufferId(long value) {
    @Override
    public String toString() {
        return "buffer#" + value;
    }
}
