package aether.scheduler.compile;

import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.HostTensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Puts matmul right operands into the layout the CPU kernels (and ggml) prefer: one contiguous row per output feature,
 * {@code b[..., n, k]} read with {@code matmul_t}, so every dot product walks both operands with unit stride.
 *
 * <ul>
 *   <li>{@code matmul(a, W)} with {@code W[..., k, n]} a constant host tensor becomes {@code matmul_t(a, W')} with
 *       {@code W'} transposed once at compile time (shared by every matmul reading W);</li>
 *   <li>{@code matmul(a, permute(b))} where the permute only swaps the last two axes becomes {@code matmul_t(a, b)},
 *       dropping the transpose copy at run time.</li>
 * </ul>
 *
 * Both are bit-exact: the products and their summation order over k are the same. Quantized weights are already stored
 * one row per output feature and are left alone.
 */
public final class WeightLayout implements Pass {

    @Override
    public String name() {
        return "weight-layout";
    }

    @Override
    public Rewrite run(Program program) {
        Rewriter rw = new Rewriter(program);
        Map<Integer, Integer> transposed = new HashMap<>();
        for (Node n : program.graph().nodes()) {
            if (!(n.op() instanceof Op.MatMul m) || m.transposeB()) {
                rw.copy(n);
                continue;
            }
            int a = rw.mapped(n.input(0));
            int b = rw.mapped(n.input(1));
            Node bNode = rw.node(b);
            if (rw.constant(b) instanceof HostTensor w && w.shape().rank() >= 2) {
                int t = transposed.computeIfAbsent(b, id -> rw.addConstant("layout%" + n.input(1), transpose(w)));
                rw.replace(n.id(), rw.add(new Op.MatMul(true), a, t));
            } else if (bNode.op() instanceof Op.Permute p && swapsLastTwo(p.axes())) {
                rw.replace(n.id(), rw.add(new Op.MatMul(true), a, bNode.input(0)));
            } else {
                rw.copy(n);
            }
        }
        return rw.finish();
    }

    private static boolean swapsLastTwo(List<Integer> axes) {
        int r = axes.size();
        for (int i = 0; i < r - 2; i++) {
            if (axes.get(i) != i) {
                return false;
            }
        }
        return r >= 2 && axes.get(r - 2) == r - 1 && axes.get(r - 1) == r - 2;
    }

    /** w[..., k, n] -> w[..., n, k]. */
    static HostTensor transpose(HostTensor w) {
        Shape s = w.shape();
        int r = s.rank();
        int k = s.dim(r - 2);
        int n = s.dim(r - 1);
        double[] src = w.toDoubleArray();
        double[] dst = new double[src.length];
        int batches = k * n == 0 ? 0 : src.length / (k * n);
        for (int b = 0; b < batches; b++) {
            int base = b * k * n;
            for (int i = 0; i < k; i++) {
                for (int j = 0; j < n; j++) {
                    dst[base + j * k + i] = src[base + i * n + j];
                }
            }
        }
        Shape t = s.with(r - 2, n).with(r - 1, k);
        return HostTensor.of(dst, t, w.type().dtype());   // matmul operands are floating
    }
}
