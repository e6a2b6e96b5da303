import aether.cluster.node.AetherNode;
import aether.cluster.node.NodeConfig;
import aether.runtime.ir.Shape;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.SchedulerState;
import aether.scheduler.client.JobResult;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * Joins a running cluster as a node without workers, submits a job to its own scheduler, which places the segments on
 * a worker of another node (inputs and results cross on Aeron), and prints where it ran and how it compares with the
 * reference executor here. Usage: scripts/example examples/ClusterJob.java SEED_HOST:PORT
 */
public class ClusterJob {
    public static void main(String[] args) throws Exception {
        String seed = args.length > 0 ? args[0] : "127.0.0.1:25520";
        try (AetherNode node = AetherNode.start(NodeConfig.load(Map.of("aether.node.port", 0,
                "aether.node.seeds", List.of(seed), "aether.node.cpu-workers", 0), null))) {
            node.up().toCompletableFuture().get(60, TimeUnit.SECONDS);
            System.out.println("joined as " + node.nodeId());
            for (int i = 0; !hasWorker(node); i++) {      // the worker listing spreads through the cluster
                if (i > 300) throw new IllegalStateException("no worker in the cluster of " + seed + " within 30 s");
                Thread.sleep(100);
            }

            Random random = new Random(42);
            float[] x = new float[64 * 256], w = new float[256 * 32];
            for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
            for (int i = 0; i < w.length; i++) w[i] = (float) random.nextGaussian();
            Graph g = new Graph();
            Tensor y = g.tensor(x, Shape.of(64, 256)).matmul(g.tensor(w, Shape.of(256, 32))).relu().softmax(-1);

            JobResult result = node.client().submit(g, y).toCompletableFuture().get(60, TimeUnit.SECONDS);
            float[] got = result.floats(0), expected = g.evaluate(new ReferenceExecutor(), y).floats(y);
            double maxDiff = 0;
            for (int i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - expected[i]));
            for (var s : result.stats().segments()) System.out.println("segment " + s.segment() + " ran on " + s.ranOn());
            System.out.printf("y[0][0..3] = %.6f %.6f %.6f %.6f%n", got[0], got[1], got[2], got[3]);
            System.out.println("max |difference| from the reference executor: " + maxDiff);
        }
    }

    static boolean hasWorker(AetherNode node) throws Exception {
        SchedulerState state = AskPattern.<JobCommand, SchedulerState>ask(node.scheduler(),
                JobCommand.GetSchedulerState::new, Duration.ofSeconds(5), node.system().scheduler())
                .toCompletableFuture().get(10, TimeUnit.SECONDS);
        return !state.workers().isEmpty();
    }
}
