/**
 * Message types shared between the runtime's actors (clients, schedulers, device workers, the memory manager), on one
 * node or across nodes: jobs ({@link aether.runtime.protocol.JobCommand}, {@link aether.runtime.protocol.JobReply}),
 * segments and workers ({@link aether.runtime.protocol.WorkerCommand}, {@link aether.runtime.protocol.SegmentEvent},
 * {@link aether.runtime.protocol.WorkerCapabilities}), tensor descriptors ({@link aether.runtime.protocol.TensorRef}),
 * buffer ids, locations and memory actions, and the {@link aether.runtime.protocol.CborSerializable} marker that binds
 * every message that may cross nodes to Pekko's Jackson CBOR serializer ({@link aether.runtime.protocol.IrJacksonModule}
 * lets IR graphs travel too). Only small descriptors live here, never bytes, segments or handles. Depends on the IR,
 * Jackson's annotations and Pekko's typed {@code ActorRef}/{@code ServiceKey}, nothing else.
 */
package aether.runtime.protocol;
