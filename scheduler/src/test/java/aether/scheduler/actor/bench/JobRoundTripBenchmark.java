package aether.scheduler.actor.bench;

import aether.runtime.ir.Shape;
import aether.scheduler.client.ComputeClient;
import aether.scheduler.client.ComputeRuntime;
import aether.scheduler.client.JobResult;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import com.typesafe.config.ConfigFactory;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * A job's round trip through {@link ComputeClient#submit(Graph, Tensor...)} for a trivial graph ({@code relu(x + 1)}
 * over 8 floats, one segment): snapshotting the graph and its inputs, {@code SubmitJob} to the scheduler actor
 * (production configuration: local messages are not serialized), planning (cached after the first job), one
 * {@code RunSegment} to the CPU worker and its device thread, the memory manager's bookkeeping, and the
 * {@code JobReply} back to the caller's future. Sample mode: the p50 and p99 lines are the round trip's percentiles.
 *
 * <p>Run: {@code scripts/jmh scheduler JobRoundTripBenchmark}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED"})
public class JobRoundTripBenchmark {

    /** The compute actors' dispatcher: the production one, or Pekko's default (see DispatchOverheadBenchmark). */
    @Param({"aether.compute-dispatcher", "default"})
    public String dispatcher;

    private ActorSystem<Void> system;
    private ComputeRuntime runtime;
    private ComputeClient client;
    private Graph graph;
    private Tensor y;

    @Setup(Level.Trial)
    public void setup() {
        system = ActorSystem.create(Behaviors.empty(), "roundtrip", ConfigFactory.parseString(
                "pekko.loglevel = WARNING").withFallback(ConfigFactory.load()));
        if (system.settings().config().getBoolean("pekko.actor.serialize-messages")) {
            throw new IllegalStateException("the benchmark must run with production settings (serialize-messages off)");
        }
        runtime = ComputeRuntime.start(system, ComputeRuntime.Settings.of("roundtrip", 1)
                .withDispatcher(dispatcher.equals("default") ? "" : dispatcher));
        client = runtime.client();
        graph = new Graph();
        Tensor x = graph.tensor(new float[] {-2f, -1f, -0.5f, 0f, 0.5f, 1f, 2f, 3f}, Shape.of(8));
        y = x.add(1.0).relu();
        float[] got = roundTrip().floats(0);
        float[] expected = {0f, 0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f};
        if (!Arrays.equals(got, expected)) {
            throw new IllegalStateException("round trip computed " + Arrays.toString(got) + ", expected "
                    + Arrays.toString(expected));
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        runtime.close();
        system.terminate();
    }

    @Benchmark
    public JobResult roundTrip() {
        return client.submit(graph, y).toCompletableFuture().join();
    }
}
