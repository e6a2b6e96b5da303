/**
 * Message types shared between the runtime's actors (memory manager, scheduler, device workers): buffer ids,
 * locations, memory actions, and the {@link aether.runtime.protocol.CborSerializable} marker that binds every message
 * that may cross nodes to Pekko's Jackson CBOR serializer. Only small descriptors live here, never bytes, segments or
 * handles. Depends on nothing but the JDK and Jackson's annotations.
 */
package aether.runtime.protocol;
