package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;

/** A tensor uses a ggml type that this build has no codec for. Carries the type so callers can map it to a 4xx. */
public final class UnsupportedTypeException extends IllegalArgumentException {

    private static final long serialVersionUID = 1L;

    private final GgmlType type;

    public UnsupportedTypeException(GgmlType type) {
        super("tensor type " + type + " is not supported yet");
        this.type = type;
    }

    /** The type that has no codec. */
    public GgmlType type() {
        return type;
    }
}
