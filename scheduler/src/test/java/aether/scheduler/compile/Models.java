package aether.scheduler.compile;

import aether.runtime.ir.DType;
import aether.runtime.ir.Shape;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Small f32 models built with the Graph API, weights as constants, for compiler tests and memory reports. */
final class Models {

    private Models() {}

    /** A graph, its outputs, the leaves to treat as constants and its run-time inputs. */
    record Model(Graph graph, List<Tensor> outputs, List<Tensor> constants, List<Tensor> inputs) {
        Program.Snapshot snapshot() {
            return Program.from(graph, constants, outputs.toArray(new Tensor[0]));
        }
    }

    static Tensor weight(Graph g, List<Tensor> constants, Random rnd, double scale, int... dims) {
        int n = 1;
        for (int d : dims) {
            n *= d;
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextGaussian() * scale);
        }
        Tensor t = g.tensor(v, Shape.of(dims));
        constants.add(t);
        return t;
    }

    /** x[batch, in] -> linear+bias+gelu -> linear+bias+relu -> linear -> softmax. */
    static Model mlp(int batch, int in, int hidden, int out, long seed) {
        Random rnd = new Random(seed);
        Graph g = new Graph();
        List<Tensor> consts = new ArrayList<>();
        Tensor x = g.input("x", Shape.of(batch, in), DType.F32);
        Tensor w1 = weight(g, consts, rnd, 1 / Math.sqrt(in), hidden, in);
        Tensor b1 = weight(g, consts, rnd, 0.1, hidden);
        Tensor w2 = weight(g, consts, rnd, 1 / Math.sqrt(hidden), hidden, hidden);   // transposed 3 times: matmul
        Tensor b2 = weight(g, consts, rnd, 0.1, hidden);
        Tensor w3 = weight(g, consts, rnd, 1 / Math.sqrt(hidden), out, hidden);
        Tensor h1 = x.linear(w1, b1).gelu();
        Tensor h2 = h1.matmul(w2.transpose(0, 1).transpose(0, 1).transpose(0, 1)).add(b2).relu();
        Tensor y = h2.linear(w3).softmax(-1);
        return new Model(g, List.of(y), consts, List.of(x));
    }

    /**
     * A pre-norm transformer block over x[tokens, dim]: rms_norm × weight, q/k/v projections, heads split by
     * reshape/permute, causal softmax(q k^T / sqrt(d) + mask), output projection and residual, then a SwiGLU feed-forward
     * with its own rms_norm × weight and residual.
     */
    static Model transformerBlock(int tokens, int dim, int heads, int ffn, long seed) {
        Random rnd = new Random(seed);
        Graph g = new Graph();
        List<Tensor> consts = new ArrayList<>();
        int hd = dim / heads;
        Tensor x = g.input("x", Shape.of(tokens, dim), DType.F32);
        Tensor attnNorm = weight(g, consts, rnd, 0.2, dim);
        Tensor wq = weight(g, consts, rnd, 1 / Math.sqrt(dim), dim, dim);
        Tensor wk = weight(g, consts, rnd, 1 / Math.sqrt(dim), dim, dim);
        Tensor wv = weight(g, consts, rnd, 1 / Math.sqrt(dim), dim, dim);
        Tensor wo = weight(g, consts, rnd, 1 / Math.sqrt(dim), dim, dim);
        Tensor ffnNorm = weight(g, consts, rnd, 0.2, dim);
        Tensor wGate = weight(g, consts, rnd, 1 / Math.sqrt(dim), ffn, dim);
        Tensor wUp = weight(g, consts, rnd, 1 / Math.sqrt(dim), ffn, dim);
        Tensor wDown = weight(g, consts, rnd, 1 / Math.sqrt(ffn), dim, ffn);

        Tensor h = x.rmsNorm(attnNorm.add(g.scalar(1, DType.F32)), 1e-5);
        Tensor q = h.linear(wq).reshape(tokens, heads, hd).permute(1, 0, 2);
        Tensor k = h.linear(wk).reshape(tokens, heads, hd).permute(1, 0, 2);
        Tensor v = h.linear(wv).reshape(tokens, heads, hd).permute(1, 0, 2);
        Tensor scores = q.matmulT(k).scale(1 / Math.sqrt(hd)).add(g.causalMask(tokens, tokens, 0, DType.F32));
        Tensor att = scores.softmax(-1).matmul(v).permute(1, 0, 2).reshape(tokens, dim);
        Tensor r1 = x.add(att.linear(wo));
        Tensor f = r1.rmsNorm(ffnNorm, 1e-5);
        Tensor act = f.linear(wGate).silu().mul(f.linear(wUp));
        Tensor y = r1.add(act.linear(wDown));
        return new Model(g, List.of(y), consts, List.of(x));
    }

    static float[] randomFloats(int n, Random rnd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextGaussian());
        }
        return v;
    }
}
