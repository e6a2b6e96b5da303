package aether.cluster.node;

import aether.runtime.exchange.ExchangeConfig;
import aether.runtime.exchange.ExchangeNode;
import aether.runtime.protocol.JobCommand;
import aether.runtime.transfer.TensorService;
import aether.scheduler.client.ComputeClient;
import aether.runtime.transfer.TensorStore;
import aether.runtime.transfer.TransferSettings;
import aether.runtime.transfer.Transport;
import com.typesafe.config.Config;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.Done;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.AddressFromURIString;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.cluster.typed.JoinSeedNodes;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One running Aether node in this JVM: an embedded Aeron media driver, an actor system in a Pekko Cluster (Artery TCP,
 * Jackson CBOR), the node's {@link TensorStore} and {@link TensorService}, and its device workers. {@link #start}
 * returns once everything exists and the join has been sent; {@link #up} completes when this member is Up.
 *
 * <p>Shutdown is Pekko's coordinated shutdown, whichever way it starts ({@link #close}, SIGTERM through the JVM hook,
 * or being downed): the member leaves the cluster, then the exchange closes (failing transfers in flight, deleting the
 * media driver's directory), then the actor system terminates and the store frees what it owns.
 */
public final class AetherNode implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(AetherNode.class);

    private final NodeSettings settings;
    private final ActorSystem<NodeGuardian.Command> system;
    private final ExchangeNode exchange;
    private final NodeGuardian.Started started;
    private final int udpPort;
    private final CompletableFuture<Void> up;
    private final NodeMetrics.Settings metricsSettings;
    private final NodeMetrics metrics;

    private AetherNode(NodeSettings settings, ActorSystem<NodeGuardian.Command> system, ExchangeNode exchange,
            NodeGuardian.Started started, int udpPort, CompletableFuture<Void> up, NodeMetrics.Settings metricsSettings,
            NodeMetrics metrics) {
        this.metricsSettings = metricsSettings;
        this.metrics = metrics;
        this.settings = settings;
        this.system = system;
        this.exchange = exchange;
        this.started = started;
        this.udpPort = udpPort;
        this.up = up;
    }

    /**
     * Starts a node from a configuration loaded with {@link NodeConfig#load}.
     *
     * @throws IllegalArgumentException if the configuration is invalid (the message names the setting)
     * @throws IllegalStateException    if a part fails to start (the media driver, the actor system, the services)
     */
    public static AetherNode start(Config config) {
        NodeSettings settings = NodeSettings.from(config);
        NodeMetrics.Settings metricsSettings = NodeMetrics.Settings.from(config);
        metricsSettings.checkPortFree();
        int udpPort = settings.transport() == Transport.IPC ? 0
                : settings.udpPort() != 0 ? settings.udpPort() : freeUdpPort(settings.udpHost());
        TransferSettings transfer = new TransferSettings(settings.transport(), settings.ipcStream(),
                settings.transport() == Transport.IPC ? null : settings.udpHost(), udpPort, settings.udpStream(),
                settings.answerTimeout(), settings.transferTimeout(), ExchangeConfig.defaults()
                        .withSendTimeout(settings.sendTimeout()).withMaxIdle(maxIdle(config)));
        ExchangeNode exchange = ExchangeNode.launchEmbedded(transfer.exchange().withAeronDirectory(settings.aeronDir()));
        CompletableFuture<NodeGuardian.Started> started = new CompletableFuture<>();
        CompletableFuture<Void> up = new CompletableFuture<>();
        ActorSystem<NodeGuardian.Command> system;
        try {
            system = ActorSystem.create(NodeGuardian.create(settings, exchange, transfer, started, up),
                    settings.systemName(), config);
        } catch (RuntimeException e) {
            exchange.close();
            throw new IllegalStateException("node %s:%d: the actor system did not start: %s"
                    .formatted(settings.host(), settings.port(), e.getMessage()), e);
        }
        CoordinatedShutdown.get(system).addTask(CoordinatedShutdown.PhaseBeforeActorSystemTerminate(),
                "aether-exchange-close", () -> {
                    exchange.close();
                    return CompletableFuture.completedFuture(Done.getInstance());
                });
        NodeGuardian.Started parts;
        try {
            parts = started.get(30, TimeUnit.SECONDS);
        } catch (InterruptedException | ExecutionException | TimeoutException e) {
            system.terminate();
            awaitTermination(system, Duration.ofSeconds(30));
            exchange.close();
            Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
            throw new IllegalStateException("node %s: services did not start: %s".formatted(settings.host(), cause),
                    cause);
        }
        system.getWhenTerminated().whenComplete((done, error) -> {
            exchange.close();      // idempotent: normally closed in coordinated shutdown already
            parts.store().close();
        });
        NodeMetrics metrics = null;
        if (metricsSettings.enabled()) {
            try {
                metrics = NodeMetrics.start(system, metricsSettings, parts.memory(), parts.scheduler());
            } catch (RuntimeException e) {
                // a taken port ends the start: an operator who asked for metrics should not get a node without them.
                // Logged too: with exit-jvm on (./aether node), terminating may end the JVM before the caller reports.
                LOG.error("node {}: {}", parts.nodeId(), e.getMessage());
                system.terminate();
                awaitTermination(system, Duration.ofSeconds(30));
                exchange.close();
                throw e;
            }
            NodeMetrics bound = metrics;
            CoordinatedShutdown.get(system).addTask(CoordinatedShutdown.PhaseServiceUnbind(), "aether-metrics-unbind",
                    () -> bound.unbind().thenApply(ignored -> Done.getInstance()));
        }
        AetherNode node = new AetherNode(settings, system, exchange, parts, udpPort, up, metricsSettings, metrics);
        node.join();
        return node;
    }

    private void join() {
        Cluster cluster = Cluster.get(system);
        Address self = cluster.selfMember().address();
        if (settings.seeds().isEmpty()) {
            cluster.manager().tell(Join.create(self));
        } else {
            List<Address> seeds = new ArrayList<>();
            for (NodeSettings.Seed seed : settings.seeds()) {
                seeds.add(AddressFromURIString.parse("pekko://%s@%s:%d".formatted(settings.systemName(),
                        seed.host(), seed.port())));
            }
            cluster.manager().tell(new JoinSeedNodes(seeds));
        }
        LOG.info("node {} joining {}", started.nodeId(), settings.seeds().isEmpty() ? "itself (new cluster)"
                : settings.seeds());
    }

    /** A UDP port free right now on {@code host} (the media driver binds it a moment later). */
    static int freeUdpPort(String host) {
        try (DatagramSocket socket = new DatagramSocket(new InetSocketAddress(host, 0))) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free UDP port on %s: %s".formatted(host, e.getMessage()), e);
        }
    }

    /** Completes when this member is Up in the cluster. */
    public CompletionStage<Void> up() {
        return up;
    }

    /** One line that says the node is ready: its address, roles, workers and where it receives tensors. */
    public String readyLine() {
        return ("aether node up: %s roles=%s cpu-workers=%d cpu-threads=%d gpu-workers=%d transport=%s aeron-dir=%s"
                + " udp=%s metrics=%s")
                .formatted(started.nodeId(), settings.roles(), settings.cpuWorkers(), settings.cpuThreads(),
                        started.workers().size() - settings.cpuWorkers(),
                        settings.transport().name().toLowerCase(java.util.Locale.ROOT), exchange.aeronDirectory(),
                        udpPort == 0 ? "off" : settings.udpHost() + ":" + udpPort,
                        metrics == null ? "off" : "http://%s:%d/metrics".formatted(metricsSettings.host(),
                                metrics.port()));
    }

    /** The Prometheus endpoint's port, 0 when it is off ({@code aether.node.metrics.port = 0}). */
    public int metricsPort() {
        return metrics == null ? 0 : metrics.port();
    }

    /** The endpoint, or null when it is off: {@link NodeMetrics#scrape()} reads the metrics without HTTP. */
    public NodeMetrics metrics() {
        return metrics;
    }

    public String nodeId() {
        return started.nodeId();
    }

    public NodeSettings settings() {
        return settings;
    }

    public ActorSystem<?> system() {
        return system;
    }

    public TensorStore store() {
        return started.store();
    }

    public ActorRef<TensorService.Command> tensorService() {
        return started.tensorService();
    }

    /** This node's scheduler (registered cluster-wide under {@code ServiceKeys.SCHEDULERS}). */
    public ActorRef<JobCommand> scheduler() {
        return started.scheduler();
    }

    /** This node's memory manager: its {@code GetState} snapshot is the node's memory metrics. */
    public ActorRef<aether.runtime.memory.MemoryManager.Command> memory() {
        return started.memory();
    }

    /**
     * A client of this node's scheduler: jobs run on any worker of the cluster. Inputs over
     * {@link ComputeClient#INLINE_LIMIT_BYTES} stay in this node's tensor store and travel to the workers that read
     * them over the tensor exchange.
     */
    public ComputeClient client() {
        return client(started.scheduler());
    }

    /**
     * A client of any scheduler of the cluster (e.g. one found under {@code ServiceKeys.SCHEDULERS} on another node).
     * Large inputs stay in this node's store and large outputs come back by reference: the SubmitJob and JobReply
     * messages carry descriptors, the bytes move over Aeron.
     */
    public ComputeClient client(ActorRef<JobCommand> scheduler) {
        return new ComputeClient(system, scheduler, ComputeClient.DEFAULT_TIMEOUT, started.workerStore(),
                started.fetcher());
    }

    /** The tensors this node's workers and scheduler hold (job inputs, segment outputs). */
    public aether.device.worker.TensorStore workerStore() {
        return started.workerStore();
    }

    public String aeronDirectory() {
        return exchange.aeronDirectory();
    }

    /** {@code aether.exchange.max-idle}, checked. */
    private static java.time.Duration maxIdle(Config config) {
        java.time.Duration idle = config.getDuration("aether.exchange.max-idle");
        if (idle.isNegative() || idle.isZero()) {
            throw new IllegalArgumentException("aether.exchange.max-idle = " + idle + " (expected: a positive duration)");
        }
        return idle;
    }

    /** The UDP inbox's port, 0 when this node does not receive over UDP. */
    public int udpPort() {
        return udpPort;
    }

    /** Completes when the actor system has terminated (after a shutdown from any cause). */
    public CompletionStage<Done> terminated() {
        return system.getWhenTerminated();
    }

    /** Runs coordinated shutdown (leave the cluster, close the exchange, terminate) and waits up to 30 s for it. */
    @Override
    public void close() {
        CoordinatedShutdown.get(system).run(CoordinatedShutdown.unknownReason());
        awaitTermination(system, Duration.ofSeconds(30));
        exchange.close();
    }

    private static void awaitTermination(ActorSystem<?> system, Duration limit) {
        try {
            system.getWhenTerminated().toCompletableFuture().get(limit.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            LOG.warn("actor system {} did not terminate within {}: {}", system.name(), limit, e.toString());
        }
    }
}
