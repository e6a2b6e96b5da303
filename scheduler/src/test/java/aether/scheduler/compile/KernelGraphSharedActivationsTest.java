package aether.scheduler.compile;

import static org.assertj.core.api.Assertions.assertThat;

import aether.device.cpu.KernelPool;
import aether.device.cpu.kernel.Matmul;
import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.runtime.quant.BlockCodec;
import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.exec.CodecWeightRows;
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
 * A compiled graph quantizes a matmul input once for all the matmuls that read it in a row (the q, k and v projections
 * of a layer, gate and up), also with other steps in between, and the results are the bits of quantizing for each.
 */
@Timeout(60)
class KernelGraphSharedActivationsTest {

    private static final int DIM = 256;

    @Test
    void shouldQuantizeEachMatmulInputOnceAndComputeTheSameBits() {
        Random rnd = new Random(5);
        Graph g = new Graph();
        Tensor x = g.input("x", Shape.of(1, DIM), DType.F32);
        Tensor h = x.silu();
        List<Tensor> w = List.of(g.weight(q8(rnd, 64, DIM)), g.weight(q8(rnd, 32, DIM)), g.weight(q8(rnd, 32, DIM)),
                g.weight(q8(rnd, 16, 32)), g.weight(q8(rnd, 8, DIM)));
        Tensor q = h.matmulT(w.get(0)).silu();   // a step between the matmuls, like rope
        Tensor k = h.matmulT(w.get(1));
        Tensor v = h.matmulT(w.get(2));
        Tensor z = k.add(v).matmulT(w.get(3));   // another input: quantized for itself
        Tensor again = h.matmulT(w.get(4));      // h again, after a matmul of z: quantized again
        float[] xs = new float[DIM];
        for (int i = 0; i < DIM; i++) {
            xs[i] = (float) rnd.nextGaussian();
        }
        Program.Snapshot snap = Program.from(g, w, q, z, again);
        try (KernelPool pool = new KernelPool(2, 0)) {
            Matmul shared = new Matmul(pool);
            Matmul separate = withoutSharing(pool);
            float[][] a = run(snap, x, xs, shared, pool);
            float[][] b = run(snap, x, xs, separate, pool);
            assertThat(shared.activationQuantizations()).as("h for q, k, v; k + v; h for the last, twice (two runs)")
                    .isEqualTo(6);
            assertThat(separate.activationQuantizations()).isEqualTo(10);
            for (int i = 0; i < a.length; i++) {
                assertThat(a[i]).as("output %d", i).containsExactly(b[i]);
            }
        }
    }

    private static float[][] run(Program.Snapshot snap, Tensor x, float[] xs, Matmul matmul, KernelPool pool) {
        try (KernelGraph kg = KernelGraph.compile(snap.program(), matmul, pool, Map.of())) {
            float[][] out = new float[3][];
            for (int run = 0; run < 2; run++) {   // a second run starts by quantizing again
                MemorySegment.copy(xs, 0, kg.input(snap.mapping()[x.id()]), ValueLayout.JAVA_FLOAT_UNALIGNED, 0, DIM);
                kg.run();
                for (int i = 0; i < out.length; i++) {
                    out[i] = kg.output(i).toArray(ValueLayout.JAVA_FLOAT);
                }
            }
            return out;
        }
    }

    private static Matmul withoutSharing(KernelPool pool) {
        String before = System.setProperty(Matmul.SHARE_ACTIVATIONS_PROPERTY, "false");
        try {
            return new Matmul(pool);
        } finally {
            if (before == null) {
                System.clearProperty(Matmul.SHARE_ACTIVATIONS_PROPERTY);
            } else {
                System.setProperty(Matmul.SHARE_ACTIVATIONS_PROPERTY, before);
            }
        }
    }

    private static CodecWeightRows q8(Random rnd, int rows, int cols) {
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        BlockCodec codec = BlockCodecs.require(GgmlType.Q8_0);
        MemorySegment s = MemorySegment.ofArray(new byte[(int) GgmlType.Q8_0.bytesFor((long) rows * cols)]);
        codec.quantize(w, 0, w.length, s, 0);
        return new CodecWeightRows(codec, s, rows, cols);
    }
}
