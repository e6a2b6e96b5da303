package aether.cluster.node;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.memory.MemoryManager;
import aether.runtime.memory.MemoryState;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.Location;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The collector against actors that answer late or never: the scrape ends at its timeout and says which source. */
@Timeout(30)
class NodeStateCollectorTest {

    static final ActorTestKit kit = ActorTestKit.create("collector-test");

    @AfterAll
    static void stop() {
        kit.shutdownTestKit();
    }

    @Test
    void shouldReportASourceThatDoesNotAnswerAsDownWithinTheTimeoutAndTheOtherOneInFull() throws Exception {
        TestProbe<MemoryManager.Command> memory = kit.createTestProbe();
        TestProbe<JobCommand> silentScheduler = kit.createTestProbe();
        var collector = new NodeStateCollector(memory.ref(), silentScheduler.ref(), kit.system().scheduler(),
                Duration.ofMillis(300));
        PrometheusRegistry registry = new PrometheusRegistry();
        registry.register(collector);

        long start = System.nanoTime();
        CompletableFuture<String> text = CompletableFuture.supplyAsync(() -> write(registry));
        MemoryManager.GetState get = memory.expectMessageClass(MemoryManager.GetState.class);
        var device = new MemoryState.LocationState(Location.device(1), 1000, 600, 100, 2);
        get.replyTo().tell(new MemoryState(List.of(device),
                2, 5, 0, 0, 0, 0, 0, 0, 1, 4096, 3, 7)
                .withTotals(new MemoryState.BufferTotals(900, 1, 0, 0, 1, 600, 1, 300, 0, 0)));
        silentScheduler.expectMessageClass(JobCommand.GetSchedulerState.class);    // asked, never answers
        String scraped = text.get(10, TimeUnit.SECONDS);
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);

        assertThat(millis).as("bounded by the 300 ms timeout, not hanging").isLessThan(5000);
        assertThat(scraped).contains("aether_node_metrics_source_up{source=\"memory\"} 1.0")
                .contains("aether_node_metrics_source_up{source=\"scheduler\"} 0.0")
                .contains("aether_memory_budget_bytes{location=\"device:1\"} 1000.0")
                .contains("aether_memory_resident_bytes{location=\"device:1\"} 600.0")
                .contains("aether_memory_pinned_bytes{location=\"device:1\"} 100.0")
                .contains("aether_memory_evictions_total 5.0")
                .contains("aether_memory_held_buffers 1.0")
                .contains("aether_memory_held_bytes 4096.0")
                .contains("aether_memory_lost_buffers_total 3.0")
                .contains("aether_memory_reclaimed_pins_total 7.0")
                .contains("aether_memory_bytes_by_residency{residency=\"both\"} 300.0")
                .contains("aether_memory_buffers_by_residency{residency=\"device\"} 1.0")
                .doesNotContain("aether_scheduler_jobs_completed");
    }

    private static String write(PrometheusRegistry registry) {
        try {
            var out = new ByteArrayOutputStream();
            PrometheusTextFormatWriter.create().write(out, registry.scrape());
            return out.toString(StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
