import aether.runtime.ir.Shape;
import aether.runtime.protocol.JobStats;
import aether.scheduler.client.ComputeRuntime;
import aether.scheduler.client.JobResult;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import com.typesafe.config.ConfigFactory;
import java.util.Arrays;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Submits a compute job to the actor runtime: a graph with two independent branches, y = relu(x·a) · tanh(x·b)ᵀ, runs
 * as segments on two CPU workers, and the result and where each segment ran are printed. Run it with
 * {@code scripts/example examples/ComputeJob.java}.
 */
public class ComputeJob {
    public static void main(String[] args) {
        ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "compute-example",
                ConfigFactory.parseString("pekko.loglevel = WARNING").withFallback(ConfigFactory.load()));
        try (ComputeRuntime runtime = ComputeRuntime.start(system, ComputeRuntime.Settings.of("local", 2))) {
            Graph g = new Graph();
            Tensor x = g.tensor(new float[] {0.5f, -1.25f, 2f, 0.75f, 1f, -0.5f}, Shape.of(2, 3));
            Tensor a = g.tensor(new float[] {1.5f, -0.5f, 0.25f, 2f, 0.1f, -1f}, Shape.of(3, 2));
            Tensor b = g.tensor(new float[] {-0.3f, 0.8f, 1.2f, -0.7f, 0.5f, 0.05f}, Shape.of(3, 2));
            Tensor y = x.matmul(a).relu().matmulT(x.matmul(b).tanh());   // the branches meet in the last matmul

            JobResult result = runtime.client().submit(g, y).toCompletableFuture().join();

            System.out.println("y = " + Arrays.toString(result.floats(0)));
            for (JobStats.SegmentStat s : result.stats().segments()) {
                System.out.printf("segment %d: %d kernel(s) on %s, %.1f us%n", s.segment(), s.groups(), s.ranOn(),
                        s.runNanos() / 1e3);
            }
        } finally {
            system.terminate();
        }
    }
}
