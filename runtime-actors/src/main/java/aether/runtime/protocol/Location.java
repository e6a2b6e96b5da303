package aether.runtime.protocol;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;

/** Where a copy of a buffer lives: this node's host memory or one of its devices (by ordinal, e.g. a CUDA device). */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
    @JsonSubTypes.Type(value = Location.Host.class, name = "host"),
    @JsonSubTypes.Type(value = Location.Device.class, name = "device")
})
public sealed interface Location {
    Location HOST = new Host();

    static Location device(int ordinal) {
        return new Device(ordinal);
    }

    /** Host (CPU) memory, including memory-mapped files. */
    record Host() implements Location {
        @Override
        public String toString() {
            return "host";
        }
    }

    /** An accelerator's own memory. */
    record Device(int ordinal) implements Location {
        public Device {
            if (ordinal < 0) {
                throw new IllegalArgumentException("device ordinal: " + ordinal + " (expected: 0+)");
            }
        }

        @Override
        public String toString() {
            return "device:" + ordinal;
        }
    }
}
