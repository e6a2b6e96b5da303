package aether.cluster;

import aether.cluster.node.AetherNode;
import aether.cluster.node.NodeConfig;
import aether.runtime.transfer.NodeIds;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.zip.CRC32C;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/** Starting in-process nodes for the multi-JVM tests, and asking actors from test code. */
final class ClusterSupport {

    private ClusterSupport() {}

    /** Settings every test node uses: free ports, a private driver directory, fast failure handling. */
    static Map<String, Object> testSettings() {
        Map<String, Object> s = new HashMap<>();
        s.put("aether.node.port", 0);
        s.put("aether.node.down-unreachable-after", "2s");
        s.put("aether.exchange.answer-timeout", "5s");
        s.put("aether.exchange.aeron-dir", Path.of(Files.isDirectory(Path.of("/dev/shm")) ? "/dev/shm"
                : System.getProperty("java.io.tmpdir")).resolve("aether-it-" + System.nanoTime()).toString());
        s.put("pekko.cluster.failure-detector.acceptable-heartbeat-pause", "2s");
        s.put("pekko.cluster.failure-detector.heartbeat-interval", "500ms");
        return s;
    }

    /** The same settings as {@code -D} flags for a {@link NodeProcess}. */
    static java.util.List<String> testFlags() {
        return java.util.List.of("-Daether.node.down-unreachable-after=2s", "-Daether.exchange.answer-timeout=5s",
                "-Dpekko.cluster.failure-detector.acceptable-heartbeat-pause=2s",
                "-Dpekko.cluster.failure-detector.heartbeat-interval=500ms");
    }

    /** Starts a node in this JVM and waits until it is Up. */
    static AetherNode startLocal(Map<String, Object> overrides) throws Exception {
        Map<String, Object> all = testSettings();
        all.putAll(overrides);
        AetherNode node = AetherNode.start(NodeConfig.load(all, null));
        try {
            node.up().toCompletableFuture().get(60, TimeUnit.SECONDS);
        } catch (Exception e) {
            node.close();
            throw e;
        }
        return node;
    }

    /** {@code host:port} of a node id ({@code pekko://aether@127.0.0.1:41234}). */
    static String hostPort(String nodeId) {
        return nodeId.substring(nodeId.indexOf('@') + 1);
    }

    static <Q, R> R ask(AetherNode node, ActorRef<Q> target, Function<ActorRef<R>, Q> message, Duration timeout)
            throws Exception {
        CompletionStage<R> reply = AskPattern.ask(target, message::apply, timeout, node.system().scheduler());
        return reply.toCompletableFuture().get(timeout.toMillis() + 5_000, TimeUnit.MILLISECONDS);
    }

    /** Waits until the Receptionist (as {@code node} sees it) lists a {@code key} service on node {@code nodeId}. */
    static <T> ActorRef<T> awaitService(AetherNode node, ServiceKey<T> key, String nodeId, Duration limit)
            throws Exception {
        long deadline = System.nanoTime() + limit.toNanos();
        while (System.nanoTime() < deadline) {
            Receptionist.Listing listing = ask(node, node.system().receptionist(),
                    (ActorRef<Receptionist.Listing> r) -> Receptionist.find(key, r), Duration.ofSeconds(5));
            for (ActorRef<T> ref : listing.getServiceInstances(key)) {
                if (NodeIds.of(ref, node.nodeId()).equals(nodeId)) {
                    return ref;
                }
            }
            Thread.sleep(50);
        }
        throw new IllegalStateException("no %s service of %s registered within %s".formatted(key.id(), nodeId, limit));
    }

    /** Waits until {@code node} sees {@code expected} members (e.g. after a dead node was downed and removed). */
    static int awaitMembers(AetherNode node, int expected, Duration limit) throws InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        var cluster = org.apache.pekko.cluster.typed.Cluster.get(node.system());
        int members;
        while ((members = count(cluster.state().getMembers())) != expected && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        return members;
    }

    private static int count(Iterable<?> items) {
        int n = 0;
        for (Object ignored : items) {
            n++;
        }
        return n;
    }

    static int crc32c(MemorySegment data) {
        CRC32C crc = new CRC32C();
        crc.update(data.asByteBuffer());
        return (int) crc.getValue();
    }
}
