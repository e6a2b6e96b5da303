package aether.cluster;

import static aether.cluster.ClusterSupport.ask;
import static aether.cluster.ClusterSupport.hostPort;

import aether.cluster.node.AetherNode;
import aether.runtime.ir.Shape;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.SchedulerState;
import aether.scheduler.client.ComputeClient;
import aether.scheduler.client.JobResult;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * A job's round trip across two JVMs: this JVM is node A (a scheduler, no workers), a child JVM is node B
 * ({@code aether node}, one CPU worker). Each job is {@code relu(x + 1)} over 8 floats: SubmitJob to A's scheduler,
 * RunSegment to B's worker over Artery (the 32-byte input pulled from A over Aeron), SegmentCompleted back, the output
 * pulled from B over Aeron, the reply. Jobs run one after another; prints p50/p99/min of the round trip.
 *
 * <p>Run: {@code scripts/jmh integration-tests --main aether.cluster.ClusterRoundTripBenchmark [jobs] [transport]
 * [max-idle]} (defaults: 2000 jobs after 500 warm-up jobs, transport auto = Aeron IPC between the two processes, the
 * exchange's {@code aether.exchange.max-idle} of reference.conf, set on both nodes).
 */
public final class ClusterRoundTripBenchmark {

    public static void main(String[] args) throws Exception {
        int jobs = args.length > 0 ? Integer.parseInt(args[0]) : 2000;
        String transport = args.length > 1 ? args[1] : "auto";
        Map<String, Object> settings = new java.util.HashMap<>(Map.of("aether.exchange.transport", transport,
                "aether.node.cpu-workers", 0, "pekko.loglevel", "WARNING"));
        java.util.List<String> flags = new java.util.ArrayList<>(ClusterSupport.testFlags());
        if (args.length > 2) {
            settings.put("aether.exchange.max-idle", args[2]);
            flags.add("-Daether.exchange.max-idle=" + args[2]);
        }
        try (AetherNode local = ClusterSupport.startLocal(settings);
                NodeProcess remote = NodeProcess.start(flags, "--port", "0", "--seed",
                        hostPort(local.nodeId()), "--transport", transport, "--cpu-threads", "1")) {
            String remoteId = remote.awaitReady(Duration.ofSeconds(60));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (ask(local, local.scheduler(), (ActorRef<SchedulerState> r) -> new JobCommand.GetSchedulerState(r),
                    Duration.ofSeconds(5)).workers().stream().noneMatch(w -> w.capabilities().nodeId()
                    .equals(remoteId))) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("B's worker not known to A's scheduler within 30 s");
                }
                Thread.sleep(50);
            }
            ComputeClient client = local.client();
            Graph g = new Graph();
            Tensor x = g.tensor(new float[] {-2f, -1f, -0.5f, 0f, 0.5f, 1f, 2f, 3f}, Shape.of(8));
            Tensor y = x.add(1.0).relu();
            float[] expected = {0f, 0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f};
            for (int i = 0; i < 500; i++) {
                run(client, g, y, expected, remoteId);
            }
            long[] nanos = new long[jobs];
            for (int i = 0; i < jobs; i++) {
                long start = System.nanoTime();
                run(client, g, y, expected, remoteId);
                nanos[i] = System.nanoTime() - start;
            }
            Arrays.sort(nanos);
            // for comparison: one Artery ask round trip to B (its scheduler's state), no Aeron, no worker
            ActorRef<JobCommand> schedulerOnB = ClusterSupport.awaitService(local,
                    aether.runtime.protocol.ServiceKeys.SCHEDULERS, remoteId, Duration.ofSeconds(30));
            long[] asks = new long[jobs];
            for (int i = -200; i < jobs; i++) {
                long start = System.nanoTime();
                ask(local, schedulerOnB, (ActorRef<SchedulerState> r) -> new JobCommand.GetSchedulerState(r),
                        Duration.ofSeconds(5));
                if (i >= 0) {
                    asks[i] = System.nanoTime() - start;
                }
            }
            Arrays.sort(asks);
            System.out.printf("Artery ask round trip to B (GetSchedulerState): min %.1f us, p50 %.1f us, p99 %.1f us%n",
                    asks[0] / 1e3, asks[jobs / 2] / 1e3, asks[(int) (jobs * 0.99)] / 1e3);
            System.out.printf("cross-JVM job round trip (%s, max-idle %s, %d jobs): min %.1f us, p50 %.1f us,"
                    + " p99 %.1f us%n", transport, args.length > 2 ? args[2] : "default", jobs, nanos[0] / 1e3, nanos[jobs / 2] / 1e3, nanos[(int) (jobs * 0.99)] / 1e3);
        }
    }

    private static void run(ComputeClient client, Graph g, Tensor y, float[] expected, String remoteId)
            throws Exception {
        JobResult result = client.submit(g, y).toCompletableFuture().get(30, TimeUnit.SECONDS);
        if (!Arrays.equals(result.floats(0), expected) || !result.stats().segments().getFirst().ranOn()
                .startsWith(remoteId + "/")) {
            throw new IllegalStateException("wrong result " + Arrays.toString(result.floats(0)) + " or worker "
                    + result.stats().segments().getFirst().ranOn());
        }
    }
}
