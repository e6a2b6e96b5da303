package aether.runtime.protocol;

/**
 * Marks a message that may cross nodes. runtime-actors' {@code reference.conf} binds it to Pekko's {@code jackson-cbor}
 * serializer. Implementations are records whose fields are records, enums, ids, collections of those, and
 * {@code ActorRef}s; a sealed interface used as a field names its subtypes with {@code @JsonTypeInfo(use = NAME)}.
 */
public interface CborSerializable {}
