package aether.cluster.node;

import aether.runtime.exchange.ExchangeConfig;
import aether.runtime.transfer.Transport;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * A node's settings, parsed once from its {@link NodeConfig} ({@code aether.node.*}, {@code aether.exchange.*}) and
 * checked here, so that nothing further in reads raw configuration.
 *
 * @param systemName   the actor system's name (the same on every node of a cluster)
 * @param host         the address Artery binds to and announces
 * @param port         Artery's port; 0 for a free one
 * @param seeds        seed nodes, {@code host:port}; empty to start a new cluster
 * @param roles        cluster roles
 * @param cpuWorkers   CPU workers this node runs (0: a node that only submits jobs and holds tensors)
 * @param cpuThreads   segments each CPU worker runs at once, one thread each (already resolved: never 0)
 * @param workerMemoryBytes the budget of each worker's output buffers
 * @param hostBudgetBytes   the memory manager's soft budget for host memory
 * @param transport    how tensor bytes travel
 * @param aeronDir     the media driver's directory, or {@code null} for a fresh one
 * @param udpHost      the UDP inbox's address
 * @param udpPort      the UDP inbox's port; 0 for a free one
 * @param ipcStream    the IPC inbox's stream
 * @param udpStream    the UDP inbox's stream
 * @param sendTimeout  see {@link ExchangeConfig#sendTimeout()}
 * @param answerTimeout   see {@link aether.runtime.transfer.TransferSettings#answerTimeout()}
 * @param transferTimeout see {@link aether.runtime.transfer.TransferSettings#transferTimeout()}
 * @param gpuWorkers   whether the node runs a worker per CUDA GPU (auto: where the driver sees any)
 */
public record NodeSettings(String systemName, String host, int port, List<Seed> seeds, List<String> roles,
        int cpuWorkers, int cpuThreads, long workerMemoryBytes, long hostBudgetBytes, Transport transport, String aeronDir, String udpHost, int udpPort,
        int ipcStream, int udpStream, Duration sendTimeout, Duration answerTimeout, Duration transferTimeout,
        aether.device.cuda.GpuWorkers gpuWorkers) {

    /** A seed node's address. */
    public record Seed(String host, int port) {
        public Seed {
            if (host == null || host.isBlank()) {
                throw new IllegalArgumentException("seed host: '%s' (expected: a host name or address)".formatted(host));
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("seed %s port: %d (expected: 1..65535)".formatted(host, port));
            }
        }

        /** Parses {@code host:port} (an IPv6 address in brackets: {@code [::1]:25520}). */
        public static Seed parse(String text) {
            int colon = text == null ? -1 : text.lastIndexOf(':');
            if (colon <= 0 || colon == text.length() - 1) {
                throw new IllegalArgumentException("seed '%s' (expected: host:port)".formatted(text));
            }
            String host = text.substring(0, colon);
            if (host.startsWith("[") && host.endsWith("]")) {
                host = host.substring(1, host.length() - 1);
            }
            try {
                return new Seed(host, Integer.parseInt(text.substring(colon + 1)));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("seed '%s': port '%s' is not a number (expected: host:port)"
                        .formatted(text, text.substring(colon + 1)), e);
            }
        }

        @Override
        public String toString() {
            return host + ":" + port;
        }
    }

    public NodeSettings {
        Objects.requireNonNull(systemName, "systemName");
        Objects.requireNonNull(transport, "transport");
        Objects.requireNonNull(gpuWorkers, "gpuWorkers");
        seeds = List.copyOf(seeds);
        roles = List.copyOf(roles);
        if (!systemName.matches("[A-Za-z0-9][A-Za-z0-9_-]*")) {
            throw new IllegalArgumentException("aether.node.system-name: '%s' (expected: letters, digits, - and _)"
                    .formatted(systemName));
        }
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException("aether.node.host: '%s' (expected: an address)".formatted(host));
        }
        range("aether.node.port", port, 0, 65535);
        range("aether.exchange.udp-port", udpPort, 0, 65535);
        range("aether.node.cpu-workers", cpuWorkers, 0, 1024);
        range("aether.node.cpu-threads", cpuThreads, 1, 4096);
        if (workerMemoryBytes < 1 || hostBudgetBytes < 1) {
            throw new IllegalArgumentException("aether.node.worker-memory %,d, host-memory-budget %,d (expected: 1+ bytes)"
                    .formatted(workerMemoryBytes, hostBudgetBytes));
        }
        if (ipcStream == udpStream) {
            throw new IllegalArgumentException("aether.exchange.ipc-stream and udp-stream are both %d (expected: "
                    .formatted(ipcStream) + "different streams)");
        }
    }

    private static void range(String name, int value, int min, int max) {
        if (value < min || value > max) {
            throw new IllegalArgumentException("%s: %d (expected: %d..%d)".formatted(name, value, min, max));
        }
    }

    /**
     * Reads the settings from a loaded configuration.
     *
     * @throws IllegalArgumentException naming the setting that is missing, of the wrong type or out of range
     */
    public static NodeSettings from(Config config) {
        try {
            Config node = config.getConfig("aether.node");
            Config exchange = config.getConfig("aether.exchange");
            List<Seed> seeds = new ArrayList<>();
            for (String s : node.getStringList("seeds")) {
                seeds.add(Seed.parse(s));
            }
            int threads = node.getInt("cpu-threads");
            if (threads < 0) {
                throw new IllegalArgumentException("aether.node.cpu-threads: %d (expected: 0 for every processor, or 1+)"
                        .formatted(threads));
            }
            String transportName = exchange.getString("transport");
            Transport transport;
            try {
                transport = Transport.valueOf(transportName.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("aether.exchange.transport: '%s' (expected: auto, ipc or udp)"
                        .formatted(transportName), e);
            }
            String host = node.getString("host");
            String udpHost = exchange.getString("udp-host");
            String aeronDir = exchange.getString("aeron-dir");
            return new NodeSettings(node.getString("system-name"), host, node.getInt("port"), seeds,
                    node.getStringList("roles"), node.getInt("cpu-workers"),
                    threads == 0 ? Runtime.getRuntime().availableProcessors() : threads,
                    node.getBytes("worker-memory"), node.getBytes("host-memory-budget"), transport,
                    aeronDir.isBlank() ? null : aeronDir, udpHost.isBlank() ? host : udpHost,
                    exchange.getInt("udp-port"), exchange.getInt("ipc-stream"), exchange.getInt("udp-stream"),
                    exchange.getDuration("send-timeout"), exchange.getDuration("answer-timeout"),
                    exchange.getDuration("transfer-timeout"),
                    aether.device.cuda.GpuWorkers.parse("aether.node.gpu-workers", node.getString("gpu-workers")));
        } catch (ConfigException e) {
            throw new IllegalArgumentException("node configuration: " + e.getMessage(), e);
        }
    }
}
