package aether.scheduler.actor;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.JobInput;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.TensorPayload;
import aether.runtime.quant.BlockCodec;
import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.client.ComputeRuntime;
import aether.scheduler.client.JobResult;
import aether.scheduler.exec.CodecWeightRows;
import aether.scheduler.exec.HostSegmentExecutor;
import aether.scheduler.exec.HostTensor;
import aether.device.cpu.CpuDevice;
import aether.device.spi.Device;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import aether.scheduler.memory.RandomGraphs;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Random graphs (with the redundancy the compiler removes and constants it folds) run through the scheduler on three
 * CPU workers, at both granularities, and give the reference executor's results bit for bit.
 */
@Timeout(120)
class SchedulerEquivalenceTest {
    static final ActorTestKit kit = ActorTestKit.create("SchedulerEquivalenceTest", StrictPekko.config());
    static final HostSegmentExecutor EXECUTOR = new HostSegmentExecutor();
    static final ComputeRuntime runtime = ComputeRuntime.start(kit.system(), new ComputeRuntime.Settings("eq", 3, 1,
            256L << 20, 1L << 30), List.of(device(0), device(1), device(2)));

    static Device device(int ordinal) {
        return new CpuDevice(ordinal, 1, 256L << 20, EXECUTOR, HostSegmentExecutor.ops(), HostSegmentExecutor.dtypes(),
                HostSegmentExecutor.quantTypes(), CpuDevice.INLINE_MAX_ELEMENTS);   // small segments inline, as in production
    }
    static final long BASE_SEED = System.nanoTime();

    @AfterAll
    static void shutdown() {
        runtime.close();
        kit.shutdownTestKit();
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            cases.add(Arguments.of(BASE_SEED + i, 1 + i % 20, i % 2 == 1,
                    i % 3 == 0 ? JobOptions.Granularity.FUSION_GROUP : JobOptions.Granularity.CHAIN));
        }
        return cases.stream();
    }

    /** Bit patterns, every NaN as the canonical one: kernels may produce either sign of NaN (no meaning in it). */
    static int[] bits(float[] values) {
        int[] b = new int[values.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = Float.floatToIntBits(values[i]);
        }
        return b;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void shouldMatchTheReferenceBitForBit(long seed, int ops, boolean redundancy, JobOptions.Granularity granularity) {
        OpGraph g = RandomGraphs.generate(seed, ops, redundancy);
        Random rnd = new Random(seed);
        Map<Integer, TensorValue> values = new HashMap<>();
        List<JobInput> inputs = new ArrayList<>();
        for (Node n : g.nodes()) {
            if (n.op() instanceof Op.Input) {
                float[] v = new float[n.shape().sizeAsInt()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) rnd.nextGaussian();
                }
                values.put(n.id(), HostTensor.ofFloats(v, n.shape()));
                inputs.add(new JobInput(n.id(), TensorPayload.Inline.ofFloats(v, n.shape())));
            }
        }
        List<HostTensor> expected = new ReferenceExecutor().executeNow(g, values);
        long referenceRuns = EXECUTOR.referenceRuns();

        JobResult result = runtime.client().submit(JobId.random(), g, inputs,
                JobOptions.DEFAULT.withGranularity(granularity)).toCompletableFuture().orTimeout(60, TimeUnit.SECONDS)
                .join();

        assertThat(result.outputCount()).isEqualTo(expected.size());
        for (int i = 0; i < expected.size(); i++) {
            assertThat(result.type(i)).isEqualTo(expected.get(i).type());
            assertThat(bits(result.floats(i))).as("output %d, seed %d\n%s", i, seed, g.dump())
                    .containsExactly(bits(expected.get(i).toFloatArray()));
        }
        assertThat(EXECUTOR.referenceRuns()).as("segments that fell back to the reference path")
                .isEqualTo(referenceRuns);
        // workers free their buffers when the scheduler's ReleaseTensors reaches them, which may follow the reply
        kit.createTestProbe().awaitAssert(java.time.Duration.ofSeconds(10), () -> {
            assertThat(runtime.store().size()).as("tensors left on the node after the job").isZero();
            return null;
        });
    }

    @Test
    void shouldMultiplyQuantizedWeightsInTheirBlockFormat() {
        Random rnd = new Random(BASE_SEED);
        int rows = 48;
        int cols = 64;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        Graph g = new Graph();
        List<Tensor> outs = new ArrayList<>();
        Tensor x = g.tensor(floats(rnd, 3 * cols), Shape.of(3, cols));
        for (GgmlType type : List.of(GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K)) {
            int c = type.blockSize() > 64 ? 256 : cols;
            Tensor xin = c == cols ? x : g.tensor(floats(rnd, 3 * c), Shape.of(3, c));
            Tensor weight = g.weight(quantized(type, floats(rnd, rows * c), rows, c));
            outs.add(xin.linear(weight).silu());
        }
        Tensor[] outputs = outs.toArray(Tensor[]::new);
        long compiledRuns = EXECUTOR.compiledRuns();

        JobResult result = runtime.client().submit(g, outputs).toCompletableFuture().orTimeout(60, TimeUnit.SECONDS)
                .join();

        var expected = g.evaluate(new ReferenceExecutor(), outputs);
        for (int i = 0; i < outputs.length; i++) {
            assertThat(bits(result.floats(i))).as("output %d", i)
                    .containsExactly(bits(expected.floats(outputs[i])));
        }
        assertThat(EXECUTOR.compiledRuns()).as("segments run compiled, weights read in place").isGreaterThan(
                compiledRuns);
    }

    @Test
    void shouldPassLargeInputsByReferenceThroughTheNodesStoreAndReleaseThem() {
        Random rnd = new Random(BASE_SEED + 2);
        Graph g = new Graph();
        Tensor x = g.tensor(floats(rnd, 2 * 512), Shape.of(2, 512));                          // 4 KiB: inline
        Tensor big = g.tensor(floats(rnd, 64 * 512), Shape.of(64, 512));                      // 128 KiB: by reference
        Tensor weight = g.weight(quantized(GgmlType.Q8_0, floats(rnd, 256 * 512), 256, 512)); // 136 KiB, in place
        Tensor y = x.linear(weight).gelu().matmul(big.transpose(0, 1).matmul(big).slice(0, 0, 256));

        JobResult result = runtime.client().submit(g, y).toCompletableFuture().orTimeout(60, TimeUnit.SECONDS)
                .join();

        assertThat(bits(result.floats(0))).containsExactly(bits(g.evaluate(new ReferenceExecutor(), y).floats(y)));
        kit.createTestProbe().awaitAssert(java.time.Duration.ofSeconds(10), () -> {
            assertThat(runtime.store().size()).as("the client's and the job's buffers are released").isZero();
            return null;
        });
    }

    @Test
    void shouldRunOpsAndTypesTheCompiledPathLacksOnTheReferencePath() {
        Random rnd = new Random(BASE_SEED + 1);
        Graph g = new Graph();
        Tensor table = g.tensor(floats(rnd, 16 * 8), Shape.of(16, 8));
        Tensor ids = g.indices(new int[] {3, 0, 15, 7}, Shape.of(4));
        Tensor positions = g.indices(new int[] {0, 1, 2, 3}, Shape.of(4));
        Tensor x = table.getRows(ids);                                             // [4, 8]
        Tensor q = x.reshape(4, 2, 4).rope(positions, aether.runtime.ir.Op.RopeMode.NEOX, 4, 10000, 1)
                .permute(1, 0, 2);                                                    // [2 heads, 4 tokens, 4]
        Tensor attended = q.attention(q, q, 0.5, 0);
        Tensor half = x.cast(aether.runtime.ir.DType.F16).mul(x.cast(aether.runtime.ir.DType.F16));
        Tensor y = attended.permute(1, 0, 2).reshape(4, 8).add(half.cast(aether.runtime.ir.DType.F32)).softmax(-1);
        long referenceRuns = EXECUTOR.referenceRuns();

        JobResult result = runtime.client().submit(g, y, half).toCompletableFuture().orTimeout(60, TimeUnit.SECONDS)
                .join();

        var expected = g.evaluate(new ReferenceExecutor(), y, half);
        assertThat(bits(result.floats(0))).containsExactly(bits(expected.floats(y)));
        assertThat(result.type(1).dtype()).isEqualTo(aether.runtime.ir.DType.F16);
        assertThat(bits(result.floats(1))).containsExactly(bits(expected.floats(half)));
        assertThat(EXECUTOR.referenceRuns()).isGreaterThan(referenceRuns);
    }

    static float[] floats(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return v;
    }

    static CodecWeightRows quantized(GgmlType type, float[] values, int rows, int cols) {
        BlockCodec codec = BlockCodecs.require(type);
        MemorySegment s = MemorySegment.ofArray(new byte[(int) type.bytesFor((long) rows * cols)]);
        codec.quantize(values, 0, values.length, s, 0);
        return new CodecWeightRows(codec, s, rows, cols);
    }
}
