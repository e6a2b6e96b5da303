package aether.scheduler.cuda;

import aether.device.cuda.SegmentLowering.Buf;
import aether.device.cuda.SegmentLowering.Plan;
import aether.device.cuda.SegmentLowering.Step;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Runs a lowered segment ({@link Plan}) on the CPU, one step at a time, with the index arithmetic of the kernels in
 * {@code segment_kernels.cu} written out in Java (f32 arithmetic, the same order of operations where it matters). It
 * checks the lowering — broadcast strides, row offsets, matmul batch offsets, scratch layout — where there is no GPU;
 * the kernels themselves are checked on a GPU by {@link CudaSegmentKernelsTest}.
 */
final class KernelEmulator {

    private final Plan plan;
    private final List<float[]> inputs;
    private final List<float[]> outputs;
    private final float[] scratch;
    private final ByteBuffer meta;

    private KernelEmulator(Plan plan, List<float[]> inputs, List<float[]> outputs) {
        this.plan = plan;
        this.inputs = inputs;
        this.outputs = outputs;
        this.scratch = new float[(int) (plan.metaOffset() / 4)];
        java.util.Arrays.fill(scratch, Float.NaN);   // an intermediate read before it is written shows up
        this.meta = ByteBuffer.wrap(plan.meta()).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Runs {@code plan} over {@code inputs}, writing {@code outputs} (f32 arrays of the values' sizes). */
    static void run(Plan plan, List<float[]> inputs, List<float[]> outputs) {
        new KernelEmulator(plan, inputs, outputs).run();
    }

    /** A buffer and the float index its first element is at. */
    private record At(float[] data, int base) {
        float get(long i) {
            return data[(int) (base + i)];
        }

        void set(long i, float v) {
            data[(int) (base + i)] = v;
        }
    }

    private At at(Buf b) {
        return switch (b) {
            case null -> null;
            case Buf.In in -> new At(inputs.get(in.index()), 0);
            case Buf.Out out -> new At(outputs.get(out.index()), 0);
            case Buf.Scratch s -> new At(scratch, (int) (s.byteOffset() / 4));
        };
    }

    private int metaInt(long offset, int i) {
        return meta.getInt((int) offset + 4 * i);
    }

    private long stridedOffset(long i, long metaOffset, int rank, int operand) {
        long off = 0;
        for (int d = rank - 1; d >= 0; d--) {
            long dim = metaInt(metaOffset, d);
            long idx = i % dim;
            i /= dim;
            off += idx * metaInt(metaOffset, rank * (1 + operand) + d);
        }
        return off;
    }

    private void run() {
        for (Step step : plan.steps()) {
            switch (step) {
                case Step.Unary s -> {
                    At x = at(s.x());
                    At y = at(s.y());
                    for (long i = 0; i < s.n(); i++) {
                        y.set(i, unary(s.fn(), x.get(i), s.p0(), s.p1()));
                    }
                }
                case Step.Binary s -> {
                    At a = at(s.a());
                    At b = at(s.b());
                    At y = at(s.y());
                    for (long i = 0; i < s.n(); i++) {
                        float u = a.get(stridedOffset(i, s.metaOffset(), s.rank(), 0));
                        float v = b.get(stridedOffset(i, s.metaOffset(), s.rank(), 1));
                        y.set(i, switch (s.fn()) {
                            case 0 -> u + v;
                            case 1 -> u - v;
                            case 2 -> u * v;
                            case 3 -> u / v;
                            case 4 -> (float) Math.pow(u, v);
                            default -> u == v ? 1f : 0f;
                        });
                    }
                }
                case Step.Gather s -> {
                    At x = at(s.x());
                    At y = at(s.y());
                    for (long i = 0; i < s.n(); i++) {
                        y.set(i, x.get(stridedOffset(i, s.metaOffset(), s.rank(), 0)));
                    }
                }
                case Step.CopyRows s -> {
                    At x = at(s.x());
                    At y = at(s.y());
                    for (long r = 0; r < s.rows(); r++) {
                        for (long c = 0; c < s.cols(); c++) {
                            y.set(s.yOff() + r * s.yStride() + c, x.get(s.xOff() + r * s.xStride() + c));
                        }
                    }
                }
                case Step.Fill s -> {
                    At y = at(s.y());
                    for (long i = 0; i < s.n(); i++) {
                        y.set(i, s.value());
                    }
                }
                case Step.CausalMask s -> {
                    At y = at(s.y());
                    for (int q = 0; q < s.queries(); q++) {
                        for (int k = 0; k < s.keys(); k++) {
                            int pos = q + s.keys() - s.queries();
                            boolean visible = k <= pos && (s.window() <= 0 || pos - k < s.window());
                            y.set((long) q * s.keys() + k, visible ? 0f : Float.NEGATIVE_INFINITY);
                        }
                    }
                }
                case Step.Reduce s -> {
                    At x = at(s.x());
                    At y = at(s.y());
                    for (long o = 0; o < s.outer(); o++) {
                        for (long in = 0; in < s.inner(); in++) {
                            float acc = s.fn() == 2 ? Float.NEGATIVE_INFINITY : 0f;
                            for (int j = 0; j < s.n(); j++) {
                                float v = x.get(o * s.n() * s.inner() + j * s.inner() + in);
                                acc = s.fn() == 2 ? Math.max(acc, v) : acc + v;
                            }
                            y.set(o * s.inner() + in, s.fn() == 1 ? acc / s.n() : acc);
                        }
                    }
                }
                case Step.SumPartial s -> {
                    At x = at(s.x());
                    At p = at(s.partial());
                    long threads = 256L * s.blocks();
                    for (int b = 0; b < s.blocks(); b++) {
                        float acc = 0;
                        for (long t = 0; t < 256; t++) {
                            for (long i = b * 256L + t; i < s.n(); i += threads) {
                                acc += x.get(i);
                            }
                        }
                        p.set(b, acc);
                    }
                }
                case Step.Softmax s -> {
                    At x = at(s.x());
                    At m = at(s.mask());
                    At y = at(s.y());
                    for (long r = 0; r < s.rows(); r++) {
                        long base = r * s.n();
                        float max = Float.NEGATIVE_INFINITY;
                        for (int j = 0; j < s.n(); j++) {
                            float z = x.get(base + j) * s.scale();
                            if (s.softCap() > 0) {
                                z = s.softCap() * (float) Math.tanh(z / s.softCap());
                            }
                            if (m != null) {
                                z += m.get(base + j);
                            }
                            y.set(base + j, z);
                            max = Math.max(max, z);
                        }
                        float sum = 0;
                        for (int j = 0; j < s.n(); j++) {
                            float e = max == Float.NEGATIVE_INFINITY ? 0 : (float) Math.exp(y.get(base + j) - max);
                            y.set(base + j, e);
                            sum += e;
                        }
                        for (int j = 0; j < s.n(); j++) {
                            y.set(base + j, max == Float.NEGATIVE_INFINITY ? 0 : y.get(base + j) / sum);
                        }
                    }
                }
                case Step.Norm s -> {
                    At x = at(s.x());
                    At y = at(s.y());
                    for (long r = 0; r < s.rows(); r++) {
                        long base = r * s.n();
                        float mean = 0;
                        if (s.layer()) {
                            for (int j = 0; j < s.n(); j++) {
                                mean += x.get(base + j);
                            }
                            mean /= s.n();
                        }
                        float ss = 0;
                        for (int j = 0; j < s.n(); j++) {
                            float d = x.get(base + j) - mean;
                            ss += d * d;
                        }
                        float inv = (float) (1 / Math.sqrt(ss / s.n() + s.eps()));
                        for (int j = 0; j < s.n(); j++) {
                            y.set(base + j, (x.get(base + j) - mean) * inv);
                        }
                    }
                }
                case Step.MatMul s -> {
                    At a = at(s.a());
                    At b = at(s.b());
                    At y = at(s.y());
                    for (int bt = 0; bt < s.batch(); bt++) {
                        long ao = meta.getLong((int) s.metaOffset() + 16 * bt);
                        long bo = meta.getLong((int) s.metaOffset() + 16 * bt + 8);
                        long yo = (long) bt * s.m() * s.n();
                        for (int i = 0; i < s.m(); i++) {
                            for (int j = 0; j < s.n(); j++) {
                                float acc = 0;
                                for (int k = 0; k < s.k(); k++) {
                                    float bv = s.transposeB() ? b.get(bo + (long) j * s.k() + k)
                                            : b.get(bo + (long) k * s.n() + j);
                                    acc = Math.fma(a.get(ao + (long) i * s.k() + k), bv, acc);
                                }
                                y.set(yo + (long) i * s.n() + j, acc);
                            }
                        }
                    }
                }
                case Step.Copy s -> {
                    At x = at(s.x());
                    At y = at(s.y());
                    for (long i = 0; i < s.bytes() / 4; i++) {
                        y.set(i, x.get(i));
                    }
                }
            }
        }
    }

    static float unary(int fn, float x, float p0, float p1) {
        double k = 0.7978845608028654;
        double a = 0.044715;
        return switch (fn) {
            case 0 -> -x;
            case 1 -> Math.abs(x);
            case 2 -> (float) Math.exp(x);
            case 3 -> (float) Math.log(x);
            case 4 -> (float) Math.sqrt(x);
            case 5 -> (float) (1 / Math.sqrt(x));
            case 6 -> (float) Math.tanh(x);
            case 7 -> sigmoid(x);
            case 8 -> x > 0 ? x : 0;
            case 9 -> (float) (0.5 * x * (1 + Math.tanh(k * x * (1 + a * x * x))));
            case 10 -> x * sigmoid(x);
            case 11 -> Math.signum(x);
            case 12 -> x > 0 ? 1 : 0;
            case 13 -> {
                double t = Math.tanh(k * x * (1 + a * x * x));
                yield (float) (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * a * x * x));
            }
            case 14 -> {
                float s = sigmoid(x);
                yield s * (1 + x * (1 - s));
            }
            case 15 -> (float) Math.pow(x, p0);
            case 16 -> Math.min(Math.max(x, p0), p1);
            case 17 -> x * p0;
            default -> x;
        };
    }

    private static float sigmoid(float x) {
        return x >= 0 ? (float) (1 / (1 + Math.exp(-x))) : (float) (Math.exp(x) / (1 + Math.exp(x)));
    }
}
