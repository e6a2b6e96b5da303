package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cpu.KernelPool;
import aether.device.cpu.kernel.Matmul;
import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.ReferenceExecutor;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Elementwise steps of the kernel graph at sizes on both sides of the pool split (KernelSteps.Map1: chunks of 2048
 * from 65536 elements on, with a partial last chunk; KernelSteps.Binary: output rows, with a broadcast operand): split
 * over two threads bit for bit what one thread computes, and both within float rounding of the reference executor.
 */
@Timeout(60)
class KernelGraphElementwiseTest {

    @Test
    void shouldMatchOneThreadBitForBitAndTheReferenceExecutor() {
        Random r = new Random(3);
        try (KernelPool pool2 = new KernelPool(2, 0); KernelPool pool1 = new KernelPool(1, 0)) {
            for (int cols : new int[] {1000, 65536, 70001}) {
                Graph g = new Graph();
                Tensor x = g.input("x", Shape.of(3, cols), DType.F32);
                Tensor bias = g.input("b", Shape.of(1, cols), DType.F32);   // broadcast over the rows
                Tensor y = x.silu().scale(0.75).tanh().add(bias).mul(x);
                double[] xs = new double[3 * cols];
                for (int i = 0; i < xs.length; i++) {
                    xs[i] = (float) (4 * r.nextGaussian());
                }
                g.set(x, HostTensor.of(xs, Shape.of(3, cols), DType.F32));
                double[] bs = new double[cols];
                for (int i = 0; i < cols; i++) {
                    bs[i] = (float) r.nextGaussian();
                }
                g.set(bias, HostTensor.of(bs, Shape.of(1, cols), DType.F32));
                double[] expected = y.toDoubleArray(new ReferenceExecutor());
                float[] split = run(g, x, bias, y, xs, bs, pool2);
                float[] serial = run(g, x, bias, y, xs, bs, pool1);
                assertThat(split).as("cols %d: two threads against one", cols).isEqualTo(serial);
                for (int i = 0; i < expected.length; i++) {
                    assertThat((double) split[i]).as("cols %d element %d", cols, i)
                            .isCloseTo(expected[i], org.assertj.core.data.Offset.offset(1e-6 + 1e-6 * Math.abs(expected[i])));
                }
            }
        }
    }

    private static float[] run(Graph g, Tensor x, Tensor bias, Tensor y, double[] xs, double[] bs, KernelPool pool) {
        Program.Snapshot snap = Program.from(g, List.of(), y);
        try (KernelGraph kg = KernelGraph.compile(snap.program(), new Matmul(pool), pool, Map.of())) {
            MemorySegment in = kg.input(snap.mapping()[x.id()]);
            for (int i = 0; i < xs.length; i++) {
                in.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) xs[i]);
            }
            MemorySegment bin = kg.input(snap.mapping()[bias.id()]);
            for (int i = 0; i < bs.length; i++) {
                bin.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) bs[i]);
            }
            kg.run();
            return kg.output(0).toArray(ValueLayout.JAVA_FLOAT);
        }
    }
}
