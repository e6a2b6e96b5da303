package aether.scheduler.actor.bench;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.JobInput;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.TensorBytes;
import aether.runtime.protocol.TensorPayload;
import aether.scheduler.actor.JobPlan;
import aether.scheduler.actor.JobPlanner;
import aether.scheduler.client.ComputeClient;
import aether.scheduler.client.ComputeRuntime;
import aether.scheduler.client.JobResult;
import aether.scheduler.exec.HostSegmentExecutor;
import com.typesafe.config.ConfigFactory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The scheduler's cost per dispatched segment: a chain of {@value #SEGMENTS} small segments (softmax over [8, 64]
 * each, one fused kernel per segment) run (a) directly, each segment's compiled graph called in turn on the caller's
 * thread ({@code direct}), and (b) as one job through the actor path with one segment per kernel ({@code actorPerKernel}:
 * SubmitJob, compile and split, RunSegment / SegmentCompleted per segment, memory-manager bookkeeping, the reply). Both
 * report time per segment (sample mode: p50 is the median); the dispatch overhead per segment is
 * {@code actorPerKernel - direct}, issue 4's budget is 20 µs median. {@code actorChained} runs the same job with the
 * chain as one segment, which is what the scheduler does by default; its per-segment figure is the job's fixed cost
 * spread over the kernels. Setup checks that both paths compute the same bits.
 *
 * <p>Run: {@code scripts/jmh scheduler DispatchOverheadBenchmark} (smoke: add {@code -f 1 -wi 1 -i 1 -w 1s -r 1s}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED"})
public class DispatchOverheadBenchmark {

    static final int SEGMENTS = 16;

    /**
     * The compute actors' dispatcher: the production one ({@code aether.compute-dispatcher}, ComputeRuntime's default),
     * Pekko's default dispatcher ({@code default}), or the affinity pool kept for comparison.
     */
    @Param({"aether.compute-dispatcher", "default", "aether.affinity-dispatcher"})
    public String dispatcher;

    private ActorSystem<Void> system;
    private ComputeRuntime runtime;
    private ComputeClient client;
    private OpGraph graph;
    private List<JobInput> inputs;
    private HostSegmentExecutor executor;
    private List<JobPlan.Segment> segments;
    private MemorySegment[] buffers;
    private Arena arena;
    private final JobOptions perKernel = JobOptions.DEFAULT.withGranularity(JobOptions.Granularity.FUSION_GROUP);

    @Setup(Level.Trial)
    public void setup() {
        OpGraph.Builder b = new OpGraph.Builder();
        int v = b.add(new Op.Input("x", TensorType.of(DType.F32, 8, 64)));
        for (int i = 0; i < SEGMENTS; i++) {
            v = b.add(new Op.Softmax(1.0 + i, 0), v);   // distinct scales: nothing for CSE to merge
        }
        graph = b.build(List.of(v));
        float[] x = new float[8 * 64];
        Random rnd = new Random(42);
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        inputs = List.of(new JobInput(0, TensorPayload.Inline.ofFloats(x, Shape.of(8, 64))));

        system = ActorSystem.create(Behaviors.empty(), "bench", ConfigFactory.parseString("pekko.loglevel = WARNING")
                .withFallback(ConfigFactory.load()));
        runtime = ComputeRuntime.start(system, ComputeRuntime.Settings.of("bench", 1)
                .withDispatcher(dispatcher.equals("default") ? "" : dispatcher));
        client = runtime.client();

        JobPlan plan = new JobPlanner().plan(graph, perKernel);
        if (plan.segments().size() != SEGMENTS) {
            throw new IllegalStateException("expected " + SEGMENTS + " segments, planned " + plan.segments().size());
        }
        segments = plan.segments();
        executor = new HostSegmentExecutor();
        arena = Arena.ofShared();
        buffers = new MemorySegment[SEGMENTS + 1];
        long bytes = TensorBytes.byteSize(TensorType.of(DType.F32, 8, 64));
        for (int i = 0; i <= SEGMENTS; i++) {
            buffers[i] = arena.allocate(bytes, 64);
        }
        MemorySegment.copy(MemorySegment.ofArray(((TensorPayload.Inline) inputs.getFirst().value()).bytes()), 0,
                buffers[0], 0, bytes);
        direct();
        float[] viaActors = actorPerKernel().floats(0);
        float[] direct = buffers[SEGMENTS].toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT);
        if (!Arrays.equals(viaActors, direct)) {
            throw new IllegalStateException("actor path and direct execution differ");
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        runtime.close();
        system.terminate();
        arena.close();
    }

    @Benchmark
    @OperationsPerInvocation(SEGMENTS)
    public MemorySegment direct() {
        for (int i = 0; i < SEGMENTS; i++) {
            executor.run(segments.get(i).spec(), List.of(buffers[i]), List.of(buffers[i + 1]));
        }
        return buffers[SEGMENTS];
    }

    @Benchmark
    @OperationsPerInvocation(SEGMENTS)
    public JobResult actorPerKernel() {
        return client.submit(JobId.random(), graph, inputs, perKernel).toCompletableFuture().join();
    }

    @Benchmark
    @OperationsPerInvocation(SEGMENTS)
    public JobResult actorChained() {
        return client.submit(JobId.random(), graph, inputs, JobOptions.DEFAULT).toCompletableFuture().join();
    }

}
