package aether.runtime.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.DType;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.ir.TensorType;
import aether.runtime.protocol.JobReply.JobFailed.Reason;
import aether.runtime.tensor.GgmlType;
import com.typesafe.config.ConfigFactory;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.apache.pekko.serialization.Serializers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Every job, segment and worker message survives Jackson CBOR, the serializer used between nodes. */
@Timeout(30)
class ProtocolSerializationTest {
    static final ActorTestKit kit = ActorTestKit.create("ProtocolSerializationTest", ConfigFactory.parseString("""
            pekko.actor.serialize-messages = on
            pekko.actor.serialize-creators = off
            pekko.loglevel = WARNING
            """).withFallback(ConfigFactory.load()));

    @AfterAll
    static void shutdown() {
        kit.shutdownTestKit();
    }

    /** A graph that uses ops with every kind of attribute (enums, lists, shapes, dtypes incl. a block type). */
    static OpGraph graph() {
        OpGraph.Builder b = new OpGraph.Builder();
        int x = b.add(new Op.Input("x", TensorType.of(DType.F32, 1, 4, 2, 64)));
        int w = b.add(new Op.Input("w", new TensorType(Shape.of(128, 64), DType.quantized(GgmlType.Q8_0))));
        int pos = b.add(new Op.Input("pos", TensorType.of(DType.I32, 4)));
        int r = b.add(new Op.Rope(Op.RopeMode.NEOX, 32, 1e6, 0.5), x, pos);
        int p = b.add(new Op.Permute(List.of(0, 2, 1, 3)), r);
        int a = b.add(new Op.Attention(0.125, 3, 50), p, p, p);
        int flat = b.add(new Op.Reshape(Shape.of(4, 128)), b.add(new Op.Permute(List.of(0, 2, 1, 3)), a));
        int y = b.add(new Op.MatMul(true), b.add(new Op.Slice(1, 0, 64), flat), w);
        int s = b.add(new Op.Softmax(1, 30), y, b.add(new Op.CausalMask(4, 128, 0, DType.F32)));
        int u = b.add(new Op.Unary(Op.UnaryFn.SILU), b.add(new Op.Cast(DType.BF16), s));
        int out = b.add(new Op.Reduce(Op.ReduceFn.MAX, 1, false), b.add(new Op.RmsNorm(1e-6), s));
        return b.build(List.of(out, s, u));
    }

    static List<Object> messages() {
        ActorRef<JobReply> jobReplies = kit.<JobReply>createTestProbe().ref();
        ActorRef<SegmentEvent> segmentReplies = kit.<SegmentEvent>createTestProbe().ref();
        ActorRef<SchedulerState> states = kit.<SchedulerState>createTestProbe().ref();
        ActorRef<WorkerDescribed> described = kit.<WorkerDescribed>createTestProbe().ref();
        ActorRef<WorkerCommand> worker = kit.<WorkerCommand>createTestProbe().ref();
        JobId job = new JobId("job-ü-1");
        OpGraph g = graph();
        TensorType f32 = TensorType.of(DType.F32, 2, 3);
        TensorRef ref = new TensorRef(new BufferId(42), 3, f32, "node-a", Location.HOST);
        TensorRef onGpu = new TensorRef(new BufferId(-7), 0,
                new TensorType(Shape.of(2, 64), DType.quantized(GgmlType.Q8_0)), "node-b", Location.device(1));
        TensorPayload inline = TensorPayload.Inline.ofFloats(new float[] {1, -2, Float.NaN, Float.MIN_VALUE, 5, 6},
                Shape.of(2, 3));
        TensorPayload ints = TensorPayload.Inline.ofInts(new int[] {Integer.MIN_VALUE, 0, 9, 3}, Shape.of(4));
        TensorPayload empty = new TensorPayload.Inline(TensorType.of(DType.F32, 0, 5), new byte[0]);
        SegmentSpec segment = new SegmentSpec(2, g, java.util.stream.IntStream.range(0, g.size()).map(i -> i + 10)
                .boxed().toList(), 5);
        WorkerCapabilities caps = new WorkerCapabilities("node-a/cpu-0", "node-a", DeviceKind.CPU, 0, 1L << 34, 2,
                WorkerCapabilities.allOpKinds(), Set.of(GgmlType.F32, GgmlType.I32),
                Set.of(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K));
        return List.of(
                new JobCommand.SubmitJob(job, g, List.of(new JobInput(0, inline), new JobInput(1,
                        new TensorPayload.Stored(onGpu)), new JobInput(2, ints)), JobOptions.DEFAULT, jobReplies),
                new JobCommand.SubmitJob(JobId.random(), g, List.of(), JobOptions.DEFAULT.withDeadlineMillis(50)
                        .withMaxAttempts(3).withGranularity(JobOptions.Granularity.FUSION_GROUP), jobReplies),
                new JobCommand.CancelJob(job, "user asked"),
                new JobCommand.ReleaseOutputs(job),
                new JobCommand.GetSchedulerState(states),
                new JobReply.JobCompleted(job, List.of(inline, empty, new TensorPayload.Stored(ref)),
                        new JobStats(123_456, 1, List.of(new JobStats.SegmentStat(0, 3, 7, "a", "b", 1, 99)))),
                new JobReply.JobFailed(job, Reason.SEGMENT_FAILED, 2, 17, "get_rows", "node-a/cpu-0",
                        "get_rows: id 99 out of range"),
                new JobReply.JobFailed(job, Reason.DEADLINE_EXCEEDED, -1, -1, "", "", "deadline"),
                new JobReply.JobCancelled(job, "cancelled"),
                new WorkerCommand.RunSegment(job, segment, List.of(ref, onGpu, ref),
                        List.of(new BufferId(1), new BufferId(2), new BufferId(3)), segmentReplies),
                new WorkerCommand.CancelSegment(job, 4),
                new WorkerCommand.ReleaseTensors(List.of(new BufferId(1), new BufferId(Long.MIN_VALUE))),
                new WorkerCommand.DescribeWorker(described),
                new WorkerDescribed(worker, caps),
                new SegmentEvent.SegmentCompleted(job, 2, "node-a/cpu-0", List.of(ref, onGpu), 5_000),
                new SegmentEvent.SegmentFailed(job, 2, "node-a/cpu-0", 4, "matmul_t", "boom"),
                new SchedulerState(List.of(new SchedulerState.WorkerState(caps, 3, 1, 10)), List.of(job), 1, 2, 3, 4,
                        5));
    }

    static Stream<Object> everyMessage() {
        return messages().stream();
    }

    @ParameterizedTest
    @MethodSource("everyMessage")
    void shouldRoundTripThroughJacksonCbor(Object message) {
        Serialization serialization = SerializationExtension.get(kit.system().classicSystem());
        Serializer serializer = serialization.findSerializerFor(message);
        assertThat(serializer.getClass().getName())
                .isEqualTo("org.apache.pekko.serialization.jackson.JacksonCborSerializer");

        byte[] bytes = serialization.serialize(message).get();
        Object back = serialization.deserialize(bytes, serializer.identifier(),
                Serializers.manifestFor(serializer, message)).get();

        assertThat(back).isEqualTo(message);
        assertThat(new String(bytes, StandardCharsets.ISO_8859_1)).doesNotContain("aether.runtime.ir");
    }

    @Test
    void shouldCoverEveryPublicMessageType() {
        Set<Class<?>> covered = new HashSet<>();
        for (Object message : messages()) {
            covered.add(message.getClass());
            if (message instanceof JobCommand.SubmitJob s) {
                s.inputs().forEach(i -> covered.add(i.value().getClass()));
            }
        }
        for (Class<?> protocol : List.of(JobCommand.class, JobReply.class, WorkerCommand.class, SegmentEvent.class,
                TensorPayload.class)) {
            Arrays.stream(protocol.getPermittedSubclasses())
                    .filter(type -> Modifier.isPublic(type.getModifiers()))
                    .forEach(type -> assertThat(covered).as("a round-trip sample of %s", type).contains(type));
        }
    }

    @Test
    void shouldDeliverAJobThroughAnActorUnderSerializeMessages() {
        TestProbe<JobCommand> probe = kit.createTestProbe();
        JobCommand.SubmitJob submit = (JobCommand.SubmitJob) messages().get(0);
        probe.ref().tell(submit);
        JobCommand received = probe.receiveMessage();
        assertThat(received).isEqualTo(submit).isNotSameAs(submit);
    }

    @Test
    void shouldRejectInlineBytesThatDoNotMatchTheType() {
        org.assertj.core.api.Assertions.assertThatThrownBy(
                () -> new TensorPayload.Inline(TensorType.of(DType.F32, 2, 3), new byte[23]))
                .hasMessageContaining("23 bytes (expected: 24)");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> new TensorRef(new BufferId(1), 0,
                new TensorType(Shape.of(2, 33), DType.quantized(GgmlType.Q8_0)), "n", Location.HOST))
                .hasMessageContaining("q8_0");
    }

    @Test
    void shouldSizeBlockTypesByWholeRows() {
        TensorRef q = new TensorRef(new BufferId(1), 0, new TensorType(Shape.of(3, 64), DType.quantized(
                GgmlType.Q8_0)), "n", Location.HOST);
        assertThat(q.byteSize()).isEqualTo(3 * 2 * 34);
    }
}
