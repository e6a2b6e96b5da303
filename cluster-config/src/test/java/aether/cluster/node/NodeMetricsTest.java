package aether.cluster.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import aether.runtime.ir.Shape;
import aether.runtime.memory.MemoryManager;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.Location;
import aether.scheduler.client.JobResult;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A real node in this JVM with its metrics endpoint on: it runs a small job on its CPU worker, then {@code /metrics} is
 * scraped over HTTP and the memory manager's and scheduler's series are checked against what the job did and what
 * was configured.
 */
@Timeout(90)
class NodeMetricsTest {

    static final long HOST_BUDGET = 48L << 20;     // 48 MiB: an unusual figure, so a match is not a default's
    static AetherNode node;
    static HttpClient http;

    @BeforeAll
    static void start() throws Exception {
        node = AetherNode.start(NodeConfig.load(Map.of("aether.node.port", 0, "aether.node.cpu-threads", 1,
                "aether.node.host-memory-budget", HOST_BUDGET, "aether.node.metrics.port", freePort(),
                "aether.exchange.transport", "ipc", "aether.exchange.aeron-dir", Path.of(System.getProperty(
                        "java.io.tmpdir")).resolve("aether-metrics-test-" + System.nanoTime()).toString()), null));
        node.up().toCompletableFuture().get(30, TimeUnit.SECONDS);
        http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    }

    @AfterAll
    static void stop() {
        if (node != null) {
            node.close();
        }
    }

    @Test
    void shouldExportTheSchedulerAndMemoryStateOfANodeThatRanAJob() throws Exception {
        assertThat(node.readyLine()).contains("metrics=http://127.0.0.1:" + node.metricsPort() + "/metrics");
        // the worker's Receptionist listing reaches the scheduler asynchronously: wait until the scrape shows it
        Map<String, Double> before = scrapeUntil(s -> s.getOrDefault("aether_scheduler_workers_known", 0.0) >= 1);

        Random random = new Random(7);
        float[] x = new float[64 * 256];
        float[] w = new float[256 * 32];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        for (int i = 0; i < w.length; i++) w[i] = (float) random.nextGaussian();
        Graph g = new Graph();
        Tensor y = g.tensor(x, Shape.of(64, 256)).matmul(g.tensor(w, Shape.of(256, 32))).relu();
        JobResult result = node.client().submit(g, y).toCompletableFuture().get(60, TimeUnit.SECONDS);
        assertThat(result.floats(0)).containsExactly(g.evaluate(new ReferenceExecutor(), y).floats(y), within(1e-4f));

        Map<String, Double> after = scrapeUntil(s -> s.getOrDefault("aether_scheduler_jobs_completed_total", 0.0)
                >= before.getOrDefault("aether_scheduler_jobs_completed_total", 0.0) + 1);
        assertThat(after.get("aether_node_metrics_source_up{source=\"memory\"}")).isEqualTo(1.0);
        assertThat(after.get("aether_node_metrics_source_up{source=\"scheduler\"}")).isEqualTo(1.0);
        // scheduler
        assertThat(after.get("aether_scheduler_jobs_completed_total")).isGreaterThanOrEqualTo(1.0);
        assertThat(after.get("aether_scheduler_jobs_failed_total")).isEqualTo(0.0);
        assertThat(after.get("aether_scheduler_jobs_running")).isEqualTo(0.0);
        assertThat(after.get("aether_scheduler_segments_dispatched_total"))
                .isGreaterThan(before.get("aether_scheduler_segments_dispatched_total"));
        assertThat(after.get("aether_scheduler_workers_known")).isEqualTo(1.0);
        String worker = "{kind=\"cpu\",node=\"%s\",ordinal=\"0\",worker=\"%s/cpu-0\"}"
                .formatted(node.nodeId(), node.nodeId());
        assertThat(after.get("aether_scheduler_worker_queue_depth" + worker)).isEqualTo(0.0);
        assertThat(after.get("aether_scheduler_worker_running_segments" + worker)).isEqualTo(0.0);
        assertThat(after.get("aether_scheduler_worker_segments_completed_total" + worker)).isGreaterThanOrEqualTo(1.0);
        // memory manager: the configured budget, and figures that agree with each other
        assertThat(after.get("aether_memory_budget_bytes{location=\"host\"}")).isEqualTo((double) HOST_BUDGET);
        double resident = after.get("aether_memory_resident_bytes{location=\"host\"}");
        assertThat(resident).isBetween(0.0, (double) HOST_BUDGET);
        assertThat(after.get("aether_memory_pinned_bytes{location=\"host\"}")).isEqualTo(0.0);  // nothing in flight
        assertThat(after.get("aether_memory_pinned_buffers")).isEqualTo(0.0);
        double registered = after.get("aether_memory_registered_bytes");
        assertThat(after.get("aether_memory_bytes_by_residency{residency=\"host\"}")
                + after.get("aether_memory_bytes_by_residency{residency=\"device\"}")
                + after.get("aether_memory_bytes_by_residency{residency=\"both\"}")
                + after.get("aether_memory_bytes_by_residency{residency=\"none\"}")).isEqualTo(registered);
        assertThat(after.get("aether_memory_registered_buffers")).isEqualTo(
                after.get("aether_memory_buffers_by_residency{residency=\"host\"}")
                        + after.get("aether_memory_buffers_by_residency{residency=\"device\"}")
                        + after.get("aether_memory_buffers_by_residency{residency=\"both\"}")
                        + after.get("aether_memory_buffers_by_residency{residency=\"none\"}"));
        for (String counter : new String[] {"aether_memory_evictions_total", "aether_memory_lost_buffers_total",
            "aether_memory_reclaimed_pins_total", "aether_memory_held_buffers", "aether_memory_held_bytes"}) {
            assertThat(after).as(counter).containsKey(counter);
            assertThat(after.get(counter)).as(counter).isGreaterThanOrEqualTo(0.0);
        }
        // the job's buffers were booked with the memory manager and freed when it completed
        assertThat(after.get("aether_memory_registered_buffers")).isEqualTo(0.0);
        assertThat(resident).isEqualTo(0.0);
    }

    @Test
    void shouldExportBuffersRegisteredAndPinnedWithTheNodesMemoryManager() throws Exception {
        var acks = org.apache.pekko.actor.testkit.typed.javadsl.TestProbe.<MemoryManager.Ack>create(node.system());
        BufferId weight = new BufferId(Long.MAX_VALUE - 1);
        long bytes = 3L << 20;
        node.memory().tell(new MemoryManager.Register(weight, bytes, BufferOrigin.WEIGHT, Set.of(Location.HOST),
                acks.ref()));
        acks.expectMessage(Duration.ofSeconds(10), new MemoryManager.Confirmed(weight));
        node.memory().tell(new MemoryManager.Pin(weight, acks.ref()));
        acks.expectMessage(Duration.ofSeconds(10), new MemoryManager.Confirmed(weight));
        try {
            Map<String, Double> s = scrape();
            assertThat(s.get("aether_memory_registered_buffers")).isEqualTo(1.0);
            assertThat(s.get("aether_memory_registered_bytes")).isEqualTo((double) bytes);
            assertThat(s.get("aether_memory_resident_bytes{location=\"host\"}")).isEqualTo((double) bytes);
            assertThat(s.get("aether_memory_resident_buffers{location=\"host\"}")).isEqualTo(1.0);
            assertThat(s.get("aether_memory_buffers_by_residency{residency=\"host\"}")).isEqualTo(1.0);
            assertThat(s.get("aether_memory_bytes_by_residency{residency=\"host\"}")).isEqualTo((double) bytes);
            assertThat(s.get("aether_memory_bytes_by_residency{residency=\"device\"}")).isEqualTo(0.0);
            assertThat(s.get("aether_memory_pinned_buffers")).isEqualTo(1.0);
            assertThat(s.get("aether_memory_pinned_bytes{location=\"host\"}")).isEqualTo((double) bytes);
        } finally {
            node.memory().tell(new MemoryManager.Unpin(weight));
            node.memory().tell(new MemoryManager.Free(weight, acks.ref()));
            acks.expectMessage(Duration.ofSeconds(10), new MemoryManager.Confirmed(weight));
        }
        Map<String, Double> freed = scrape();
        assertThat(freed.get("aether_memory_registered_buffers")).isEqualTo(0.0);
        assertThat(freed.get("aether_memory_pinned_buffers")).isEqualTo(0.0);
    }

    @Test
    void shouldAnswerOtherPathsWith404AndNonGetWith405() throws Exception {
        var missing = http.send(HttpRequest.newBuilder(uri("/metric")).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(missing.statusCode()).isEqualTo(404);
        assertThat(missing.body()).contains("/metrics");
        var post = http.send(HttpRequest.newBuilder(uri("/metrics")).POST(HttpRequest.BodyPublishers.noBody())
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(post.statusCode()).isEqualTo(405);
    }

    @Test
    void shouldRefuseToStartANodeWhoseMetricsPortIsTakenNamingThePort() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            int port = taken.getLocalPort();
            assertThatThrownBy(() -> AetherNode.start(NodeConfig.load(Map.of("aether.node.port", 0,
                    "aether.node.cpu-workers", 0, "aether.node.metrics.port", port, "aether.exchange.transport", "ipc"),
                    null)))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("metrics port " + port + " on 127.0.0.1 cannot be bound")
                    .hasMessageContaining("--metrics-port");
        }
    }

    @Test
    void shouldRejectAnOutOfRangePortNamingTheSetting() {
        assertThatThrownBy(() -> NodeMetrics.Settings.from(NodeConfig.load(Map.of("aether.node.metrics.port", 70000),
                null))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("aether.node.metrics.port: 70000 (expected: 0 for no endpoint, or 1..65535)");
        NodeMetrics.Settings off = NodeMetrics.Settings.from(NodeConfig.load(Map.of(), null));
        assertThat(off.enabled()).as("off by default").isFalse();
        assertThat(off.host()).isEqualTo("127.0.0.1");      // the node's host
    }

    /** Scrapes until {@code done} holds (up to 20 s): the scheduler learns of workers and job ends asynchronously. */
    static Map<String, Double> scrapeUntil(java.util.function.Predicate<Map<String, Double>> done) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (true) {
            Map<String, Double> samples = scrape();
            if (done.test(samples) || System.nanoTime() > deadline) {
                return samples;
            }
            Thread.sleep(50);
        }
    }

    /** {@code GET /metrics} parsed: series (name with its labels as written) to value. */
    static Map<String, Double> scrape() throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(uri("/metrics"))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValueSatisfying(
                type -> assertThat(type).startsWith("text/plain").contains("version=0.0.4"));
        Map<String, Double> samples = new HashMap<>();
        Pattern sample = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\\{[^}]*\\})?) (\\S+)$");
        for (String line : response.body().split("\n")) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            Matcher m = sample.matcher(line);
            assertThat(m.matches()).as("a sample line: %s", line).isTrue();
            samples.put(m.group(1), Double.parseDouble(m.group(2)));
        }
        return samples;
    }

    static URI uri(String path) {
        return URI.create("http://127.0.0.1:" + node.metricsPort() + path);
    }

    /** A port free right now (the node binds it a moment later; nothing else in the test takes ports meanwhile). */
    static int freePort() throws Exception {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
