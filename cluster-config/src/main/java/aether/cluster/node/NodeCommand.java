package aether.cluster.node;

import com.typesafe.config.Config;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ./aether node}: runs one cluster node in the foreground until it is stopped (SIGTERM or Ctrl-C run the
 * coordinated shutdown: leave the cluster, stop the workers and the media driver, delete its directory).
 */
@Command(name = "node", mixinStandardHelpOptions = true,
        description = {"Runs an Aether cluster node in the foreground: a Pekko Cluster member (Artery TCP) with a "
                + "scheduler, CPU workers and an embedded Aeron media driver for tensor bytes. It prints one "
                + "'aether node up: ...' line once it is Up; Ctrl-C or SIGTERM leaves the cluster cleanly.",
                "Settings, strongest first: these options, -D flags (AETHER_JAVA_OPTS), CONFIG_FORCE_* and AETHER_* "
                + "environment variables, --config FILE, the defaults in cluster-config's reference.conf."},
        footer = {"", "Examples:",
                "  start a cluster:    ./aether node --host 127.0.0.1 --port 25520",
                "  join it:            ./aether node --port 25521 --seed 127.0.0.1:25520",
                "  with metrics:       ./aether node --metrics-port 9464   (then curl http://127.0.0.1:9464/metrics)",
                "  submit a job to it: scripts/example examples/ClusterJob.java 127.0.0.1:25520"})
public final class NodeCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--host", description = "Address to bind and announce (default 127.0.0.1).")
    String host;

    @Option(names = "--port", description = "Artery TCP port; 0 picks a free one (default 25520).")
    Integer port;

    @Option(names = "--seed", paramLabel = "HOST:PORT", description = "A seed node to join (repeatable). None: start a new cluster.")
    List<String> seeds = new ArrayList<>();

    @Option(names = "--role", paramLabel = "ROLE", description = "A cluster role (repeatable; default: worker).")
    List<String> roles = new ArrayList<>();

    @Option(names = "--cpu-threads", paramLabel = "N", description = "Segments each CPU worker runs at once (a thread each); 0 = all processors (default 0).")
    Integer cpuThreads;

    @Option(names = "--cpu-workers", paramLabel = "N", description = "CPU workers on this node; 0 = none (default 1).")
    Integer cpuWorkers;

    @Option(names = "--gpu-workers", paramLabel = "auto|on|off", description = "A worker per CUDA GPU: auto = every GPU the driver sees, CPU only without one; on = fail without one; off = none (default auto, env AETHER_GPU_WORKERS).")
    String gpuWorkers;

    @Option(names = "--transport", paramLabel = "auto|ipc|udp", description = "How tensor bytes move between nodes: auto = Aeron IPC (shared memory) with nodes on this host, UDP with others (default auto).")
    String transport;

    @Option(names = "--metrics-port", paramLabel = "N", description = "Serve Prometheus metrics at http://HOST:N/metrics (memory manager, scheduler); 0 = off (default 0, env AETHER_METRICS_PORT).")
    Integer metricsPort;

    @Option(names = "--config", paramLabel = "FILE", description = "A HOCON file with aether.* and pekko.* settings.")
    Path configFile;

    @Override
    public Integer call() {
        var err = spec.commandLine().getErr();
        Map<String, Object> overrides = new LinkedHashMap<>();
        if (host != null) {
            overrides.put("aether.node.host", host);
        }
        if (port != null) {
            overrides.put("aether.node.port", port);
        }
        if (!seeds.isEmpty()) {
            overrides.put("aether.node.seeds", seeds);
        }
        if (!roles.isEmpty()) {
            overrides.put("aether.node.roles", roles);
        }
        if (cpuThreads != null) {
            overrides.put("aether.node.cpu-threads", cpuThreads);
        }
        if (cpuWorkers != null) {
            overrides.put("aether.node.cpu-workers", cpuWorkers);
        }
        if (gpuWorkers != null) {
            overrides.put("aether.node.gpu-workers", gpuWorkers);
        }
        if (metricsPort != null) {
            overrides.put("aether.node.metrics.port", metricsPort);
        }
        if (transport != null) {
            overrides.put("aether.exchange.transport", transport);
        }
        // a node downed by the cluster (or whose system stops for any reason) ends its process
        overrides.put("pekko.coordinated-shutdown.exit-jvm", "on");
        AetherNode node;
        try {
            Config config = NodeConfig.load(overrides, configFile);
            NodeSettings.from(config);     // report a bad setting before anything starts
            NodeMetrics.Settings.from(config);
            node = AetherNode.start(config);
        } catch (IllegalArgumentException | IllegalStateException e) {
            err.println("aether node: " + e.getMessage());
            err.flush();
            return 2;
        }
        try {
            node.up().toCompletableFuture().get(120, TimeUnit.SECONDS);
        } catch (InterruptedException | ExecutionException | TimeoutException e) {
            err.println("aether node: %s did not become Up within 120 s (seeds %s unreachable?)"
                    .formatted(node.nodeId(), node.settings().seeds()));
            err.flush();
            node.close();
            return 1;
        }
        var out = spec.commandLine().getOut();
        out.println(node.readyLine());
        out.flush();
        try {
            node.terminated().toCompletableFuture().get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            err.println("aether node: " + e.getCause());
        }
        return 0;
    }
}
