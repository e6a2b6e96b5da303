/**
 * A cluster node: configuration ({@link aether.cluster.node.NodeConfig}, HOCON layered over {@code reference.conf}),
 * its parsed form ({@link aether.cluster.node.NodeSettings}), and {@link aether.cluster.node.AetherNode}, which starts
 * the embedded Aeron media driver, the actor system with Pekko Cluster (Artery TCP, Jackson CBOR), the node's
 * tensor service and device workers, joins the seed nodes, and undoes all of it in coordinated shutdown. The
 * {@code ./aether node} command ({@link aether.cluster.node.NodeCommand}) runs one in the foreground.
 */
package aether.cluster.node;
