package aether.cluster.node;

import aether.runtime.memory.MemoryManager;
import aether.runtime.memory.MemoryState;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.SchedulerState;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.CounterSnapshot.CounterDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot.GaugeDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Scheduler;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * The node's memory manager and scheduler as Prometheus metrics. Each scrape asks both actors for their snapshots
 * ({@link MemoryManager.GetState}, {@link JobCommand.GetSchedulerState}) at once and waits at most {@code timeout} for
 * the answers, so a scrape reflects their state at that moment. The actors only answer a message: they are never
 * blocked or read from another thread. A source that does not answer in time is left out of that scrape and reported
 * as {@code aether_node_metrics_source_up{source=...} 0}, so a busy or stopped actor shows up instead of hanging the
 * scrape.
 *
 * <p>Counters of the snapshots (which only grow) are Prometheus counters; everything else is a gauge.
 */
final class NodeStateCollector implements MultiCollector {

    private final ActorRef<MemoryManager.Command> memory;
    private final ActorRef<JobCommand> scheduler;
    private final Scheduler timers;
    private final Duration timeout;

    NodeStateCollector(ActorRef<MemoryManager.Command> memory, ActorRef<JobCommand> scheduler, Scheduler timers,
            Duration timeout) {
        this.memory = memory;
        this.scheduler = scheduler;
        this.timers = timers;
        this.timeout = timeout;
    }

    @Override
    public MetricSnapshots collect() {
        long deadline = System.nanoTime() + timeout.toNanos();
        CompletionStage<MemoryState> memoryState = AskPattern.ask(memory, MemoryManager.GetState::new, timeout, timers);
        CompletionStage<SchedulerState> schedulerState = AskPattern.ask(scheduler,
                (ActorRef<SchedulerState> replyTo) -> new JobCommand.GetSchedulerState(replyTo), timeout, timers);
        MemoryState mem = await(memoryState, deadline);
        SchedulerState sched = await(schedulerState, deadline);

        List<MetricSnapshot> out = new ArrayList<>();
        out.add(gauge("aether_node_metrics_source_up", "1 when the source answered this scrape within the timeout",
                point(mem == null ? 0 : 1, "source", "memory"), point(sched == null ? 0 : 1, "source", "scheduler")));
        if (mem != null) {
            memory(mem, out);
        }
        if (sched != null) {
            scheduler(sched, out);
        }
        return new MetricSnapshots(out);
    }

    /** The answer, or null when it failed or did not come before {@code deadline}. */
    private static <T> T await(CompletionStage<T> answer, long deadline) {
        try {
            return answer.toCompletableFuture().get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        } catch (ExecutionException | TimeoutException e) {
            return null;
        }
    }

    private static void memory(MemoryState s, List<MetricSnapshot> out) {
        List<GaugeDataPointSnapshot> budget = new ArrayList<>();
        List<GaugeDataPointSnapshot> resident = new ArrayList<>();
        List<GaugeDataPointSnapshot> residentBuffers = new ArrayList<>();
        List<GaugeDataPointSnapshot> pinned = new ArrayList<>();
        for (MemoryState.LocationState l : s.locations()) {
            String location = l.location().toString();
            budget.add(point(l.budgetBytes(), "location", location));
            resident.add(point(l.usedBytes(), "location", location));
            residentBuffers.add(point(l.bufferCount(), "location", location));
            pinned.add(point(l.pinnedBytes(), "location", location));
        }
        out.add(gauge("aether_memory_budget_bytes", "Soft budget of each location (host, device:N)", budget));
        out.add(gauge("aether_memory_resident_bytes", "Bytes of current copies at each location", resident));
        out.add(gauge("aether_memory_resident_buffers", "Buffers with a current copy at each location",
                residentBuffers));
        out.add(gauge("aether_memory_pinned_bytes", "Bytes pinned by in-flight uses at each location", pinned));

        MemoryState.BufferTotals t = s.totals();
        out.add(gauge("aether_memory_registered_buffers", "Buffers registered with the memory manager",
                point(s.bufferCount())));
        out.add(gauge("aether_memory_registered_bytes", "Bytes of the registered buffers (each counted once)",
                point(t.registeredBytes())));
        out.add(gauge("aether_memory_buffers_by_residency",
                "Registered buffers by where their current copies are: host, device, both, none (an unmapped weight)",
                point(t.hostOnlyBuffers(), "residency", "host"), point(t.deviceOnlyBuffers(), "residency", "device"),
                point(t.bothBuffers(), "residency", "both"), point(t.unmappedBuffers(), "residency", "none")));
        out.add(gauge("aether_memory_bytes_by_residency",
                "Bytes of the registered buffers by where their current copies are: host, device, both, none",
                point(t.hostOnlyBytes(), "residency", "host"), point(t.deviceOnlyBytes(), "residency", "device"),
                point(t.bothBytes(), "residency", "both"), point(t.unmappedBytes(), "residency", "none")));
        out.add(gauge("aether_memory_pinned_buffers", "Buffers pinned by in-flight uses", point(t.pinnedBuffers())));
        out.add(gauge("aether_memory_held_buffers",
                "Buffers whose only copy a worker on another node holds (in no budget of this node)",
                point(s.heldBuffers())));
        out.add(gauge("aether_memory_held_bytes", "Bytes of the buffers held on other nodes", point(s.heldBytes())));

        out.add(counter("aether_memory_evictions", "Copies evicted to stay within a budget", s.evictions()));
        out.add(counter("aether_memory_hits", "Uses that found a current copy at the requested location", s.hits()));
        out.add(counter("aether_memory_misses", "Uses that found no current copy at the requested location",
                s.misses()));
        out.add(counter("aether_memory_prefetches", "Prefetch hints acted on", s.prefetches()));
        out.add(counter("aether_memory_dropped_hints", "Prefetch hints not acted on", s.droppedHints()));
        out.add(counter("aether_memory_invalidations", "Stale copies invalidated by a write", s.invalidations()));
        out.add(counter("aether_memory_refused_requests", "Requests refused (invalid or over budget)",
                s.refusedRequests()));
        out.add(counter("aether_memory_lost_buffers",
                "Buffers lost because the worker holding their only copy terminated", s.lostBuffers()));
        out.add(counter("aether_memory_reclaimed_pins",
                "Pins released by the manager because the worker they were taken for terminated", s.reclaimedPins()));
    }

    private static void scheduler(SchedulerState s, List<MetricSnapshot> out) {
        List<GaugeDataPointSnapshot> queued = new ArrayList<>();
        List<GaugeDataPointSnapshot> running = new ArrayList<>();
        List<CounterDataPointSnapshot> completed = new ArrayList<>();
        int queuedSegments = 0;
        for (SchedulerState.WorkerState w : s.workers()) {
            var c = w.capabilities();
            Labels labels = Labels.of("worker", c.workerId(), "node", c.nodeId(),
                    "kind", c.kind().name().toLowerCase(Locale.ROOT), "ordinal", Integer.toString(c.ordinal()));
            queued.add(GaugeDataPointSnapshot.builder().labels(labels).value(w.queued()).build());
            running.add(GaugeDataPointSnapshot.builder().labels(labels).value(w.running()).build());
            completed.add(CounterDataPointSnapshot.builder().labels(labels).value(w.completed()).build());
            queuedSegments += w.queued();
        }
        out.add(gauge("aether_scheduler_workers_known", "Device workers this scheduler can place segments on",
                point(s.workers().size())));
        out.add(gauge("aether_scheduler_jobs_running",
                "Jobs accepted and not yet answered (the scheduler admits every job at once: waiting work is "
                        + "counted in segments per worker queue)", point(s.runningJobs().size())));
        out.add(gauge("aether_scheduler_segments_queued", "Segments waiting in the workers' queues, over all workers",
                point(queuedSegments)));
        out.add(gauge("aether_scheduler_worker_queue_depth",
                "Segments of this node's scheduler waiting in each worker's queue", queued));
        out.add(gauge("aether_scheduler_worker_running_segments", "Segments running on each worker", running));
        var perWorker = CounterSnapshot.builder().name("aether_scheduler_worker_segments_completed")
                .help("Segments each worker completed for this node's scheduler (workers serve every scheduler)");
        completed.forEach(perWorker::dataPoint);
        out.add(perWorker.build());
        out.add(counter("aether_scheduler_jobs_completed", "Jobs answered with JobCompleted", s.jobsCompleted()));
        out.add(counter("aether_scheduler_jobs_failed", "Jobs answered with JobFailed", s.jobsFailed()));
        out.add(counter("aether_scheduler_jobs_cancelled", "Jobs answered with JobCancelled", s.jobsCancelled()));
        out.add(counter("aether_scheduler_segments_dispatched", "Segments sent to workers", s.segmentsDispatched()));
        out.add(counter("aether_scheduler_segments_stolen", "Segments taken from another worker's queue",
                s.segmentsStolen()));
    }

    private static GaugeDataPointSnapshot point(double value, String... labels) {
        return GaugeDataPointSnapshot.builder().labels(Labels.of(labels)).value(value).build();
    }

    private static GaugeSnapshot gauge(String name, String help, GaugeDataPointSnapshot... points) {
        return gauge(name, help, List.of(points));
    }

    private static GaugeSnapshot gauge(String name, String help, List<GaugeDataPointSnapshot> points) {
        var builder = GaugeSnapshot.builder().name(name).help(help);
        points.forEach(builder::dataPoint);
        return builder.build();
    }

    /** A counter without labels; the exposition appends {@code _total} to {@code name}. */
    private static CounterSnapshot counter(String name, String help, long value) {
        return CounterSnapshot.builder().name(name).help(help)
                .dataPoint(CounterDataPointSnapshot.builder().value(value).build()).build();
    }
}
