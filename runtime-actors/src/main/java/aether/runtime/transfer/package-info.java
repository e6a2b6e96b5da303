/**
 * Tensors between nodes: a node's {@link aether.runtime.transfer.TensorStore} holds the tensor versions that live in
 * its memory, and its {@link aether.runtime.transfer.TensorService} actor serves them to the cluster. Actor messages
 * carry only {@link aether.runtime.exchange.TensorDescriptor}s; the bytes move over the node's
 * {@link aether.runtime.exchange.ExchangeNode} (Aeron IPC when both nodes share a host, UDP otherwise), checked frame
 * by frame with CRC32C. A transfer that is lost, times out, or whose peer leaves the cluster fails the request with an
 * error naming the node. Depends on the exchange and on Pekko's typed actors, never on cluster membership directly
 * (peers are found through the Receptionist, which a clustered system makes cluster-wide), devices or the scheduler.
 */
package aether.runtime.transfer;
