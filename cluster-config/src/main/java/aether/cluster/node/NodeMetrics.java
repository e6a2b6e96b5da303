package aether.cluster.node;

import aether.runtime.memory.MemoryManager;
import aether.runtime.protocol.JobCommand;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpMethods;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;

/**
 * A node's Prometheus endpoint: {@code GET /metrics} on {@code aether.node.metrics.host:port}, served by Pekko HTTP (on
 * the node's classpath already, for the inference server) on the node's own actor system, so it stops with the node.
 * The registry holds one {@link NodeStateCollector}; a scrape runs on Pekko's blocking-IO dispatcher because it waits
 * (at most {@link Settings#timeout()}) for the actors' answers.
 */
public final class NodeMetrics {

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();
    private final ServerBinding binding;

    /**
     * {@code aether.node.metrics.*}.
     *
     * @param host    the address to listen on
     * @param port    the port; 0 = no endpoint
     * @param timeout how long a scrape waits for the memory manager's and the scheduler's answers
     */
    public record Settings(String host, int port, Duration timeout) {
        public Settings {
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException(
                        "aether.node.metrics.port: %d (expected: 0 for no endpoint, or 1..65535)".formatted(port));
            }
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException(
                        "aether.node.metrics.timeout: %s (expected: a positive duration)".formatted(timeout));
            }
        }

        public boolean enabled() {
            return port != 0;
        }

        /**
         * Fails now, before the node starts anything, when the port is taken: a node stopping on a failed bind later
         * would exit through coordinated shutdown ({@code exit-jvm}) before its caller could say why. The bind at
         * start still checks again (another process may take the port in between).
         *
         * @throws IllegalStateException naming the port and how to choose another
         */
        public void checkPortFree() {
            if (!enabled()) {
                return;
            }
            try (ServerSocket probe = new ServerSocket()) {
                probe.setReuseAddress(true);       // as the real bind: a port in TIME_WAIT is free
                probe.bind(new InetSocketAddress(host, port));
            } catch (IOException e) {
                throw portTaken(this, e);
            }
        }

        /** Reads {@code aether.node.metrics}; an empty host means the node's {@code aether.node.host}. */
        public static Settings from(Config config) {
            try {
                Config metrics = config.getConfig("aether.node.metrics");
                String host = metrics.getString("host");
                Object port = metrics.getValue("port").unwrapped();
                int number;
                try {      // an environment variable arrives as a string: name the setting, not "env variables"
                    number = port instanceof Number n ? n.intValue() : Integer.parseInt(String.valueOf(port).trim());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(("aether.node.metrics.port (or AETHER_METRICS_PORT): '%s' "
                            + "(expected: 0 for no endpoint, or a port 1..65535)").formatted(port), e);
                }
                return new Settings(host.isBlank() ? config.getString("aether.node.host") : host, number,
                        metrics.getDuration("timeout"));
            } catch (ConfigException e) {
                throw new IllegalArgumentException("node configuration: " + e.getMessage(), e);
            }
        }
    }

    private NodeMetrics(ActorSystem<?> system, Settings settings, ActorRef<MemoryManager.Command> memory,
            ActorRef<JobCommand> scheduler) {
        registry.register(new NodeStateCollector(memory, scheduler, system.scheduler(), settings.timeout()));
        Executor blocking = system.dispatchers().lookup(DispatcherSelector.blocking());
        CompletionStage<ServerBinding> bound = Http.get(system).newServerAt(settings.host(), settings.port())
                .bind((org.apache.pekko.japi.function.Function<HttpRequest, CompletionStage<HttpResponse>>)
                        request -> handle(request, system, blocking));
        try {
            binding = bound.toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("metrics endpoint %s:%d: interrupted while binding"
                    .formatted(settings.host(), settings.port()), e);
        } catch (ExecutionException | TimeoutException e) {
            throw portTaken(settings, e instanceof ExecutionException ? e.getCause() : e);
        }
    }

    private static IllegalStateException portTaken(Settings settings, Throwable cause) {
        return new IllegalStateException(("metrics port %d on %s cannot be bound (in use by another process?): "
                + "%s (expected: a free port in aether.node.metrics.port / --metrics-port / AETHER_METRICS_PORT, or 0 "
                + "for no metrics endpoint)").formatted(settings.port(), settings.host(), rootMessage(cause)), cause);
    }

    /**
     * Listens on {@code settings}' address for scrapes of {@code memory} and {@code scheduler}.
     *
     * @throws IllegalStateException naming the port when it cannot be bound (e.g. another process holds it)
     */
    public static NodeMetrics start(ActorSystem<?> system, Settings settings, ActorRef<MemoryManager.Command> memory,
            ActorRef<JobCommand> scheduler) {
        if (!settings.enabled()) {
            throw new IllegalArgumentException("aether.node.metrics.port is 0: the metrics endpoint is off");
        }
        return new NodeMetrics(system, settings, memory, scheduler);
    }

    private CompletionStage<HttpResponse> handle(HttpRequest request, ActorSystem<?> system, Executor blocking) {
        request.discardEntityBytes(system);
        String path = request.getUri().path();
        if (!path.equals("/metrics")) {
            return CompletableFuture.completedFuture(HttpResponse.create().withStatus(StatusCodes.NOT_FOUND)
                    .withEntity("not found: %s (the metrics are at GET /metrics)\n".formatted(path)));
        }
        if (!request.method().equals(HttpMethods.GET)) {
            return CompletableFuture.completedFuture(HttpResponse.create().withStatus(StatusCodes.METHOD_NOT_ALLOWED)
                    .withEntity("/metrics answers GET only\n"));
        }
        return CompletableFuture.supplyAsync(this::scrape, blocking).thenApply(bytes ->
                HttpResponse.create().withEntity(ContentTypes.parse(writer.getContentType()), bytes));
    }

    /** The current metrics in the Prometheus text format (waits for the actors' answers). */
    public byte[] scrape() {
        var out = new ByteArrayOutputStream(8192);
        try {
            writer.write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    /** The port listened on. */
    public int port() {
        return binding.localAddress().getPort();
    }

    /** Stops listening (also done by the node's coordinated shutdown). */
    public CompletionStage<?> unbind() {
        return binding.unbind();
    }

    private static String rootMessage(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        return root == e ? String.valueOf(e.getMessage()) : e.getMessage() + " (" + root + ")";
    }
}
