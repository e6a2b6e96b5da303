package aether.device.cuda;

import static aether.device.cuda.CudaDriver.check;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import aether.device.cuda.SegmentLowering.Buf;
import aether.device.cuda.SegmentLowering.Plan;
import aether.device.cuda.SegmentLowering.Step;
import aether.device.spi.SegmentExecutionException;
import java.util.List;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * Enqueues a lowered segment ({@link SegmentLowering.Plan}) on a {@link CudaContext}'s stream: the metadata upload,
 * then one kernel launch per step. Returns once everything is enqueued (nothing waits for the GPU); a launch the driver
 * refuses fails with a {@link SegmentExecutionException} naming the step's node. Runs on the device's thread.
 */
final class SegmentLauncher {

    /** Threads of the elementwise kernels' blocks and the most blocks a grid-stride launch uses. */
    private static final int BLOCK = 256;
    private static final long MAX_GRID = 1L << 16;
    /** Row kernels (softmax, norms, reductions) run one block per row, at most this many blocks (they loop). */
    private static final long MAX_ROW_GRID = 1L << 20;

    private final CudaContext cuda;

    SegmentLauncher(CudaContext cuda) {
        this.cuda = cuda;
    }

    /** Kernels this launcher uses, loaded when the device opens (not lazily during a segment). */
    static final String[] KERNELS = {"seg_unary", "seg_binary", "seg_gather", "seg_copy_rows", "seg_fill",
        "seg_causal_mask", "seg_reduce_rows", "seg_reduce_strided", "seg_sum_partial", "seg_softmax", "seg_norm",
        "seg_matmul"};

    /**
     * Enqueues {@code plan} reading {@code inputs}, writing {@code outputs}, with {@code scratch} (at least {@code
     * plan.scratchBytes()} bytes; null when it needs none).
     */
    void enqueue(int segmentIndex, Plan plan, List<CUdeviceptr> inputs, List<CUdeviceptr> outputs,
            CUdeviceptr scratch) {
        cuda.bind();
        if (plan.meta().length > 0 && scratch != null) {
            // pageable host memory: the driver stages the bytes before returning, so the array may go afterwards
            check(cuMemcpyHtoDAsync(scratch.withByteOffset(plan.metaOffset()), Pointer.to(plan.meta()),
                    plan.meta().length, cuda.stream()), "cuMemcpyHtoDAsync(segment metadata)");
        }
        Resolver r = new Resolver(inputs, outputs, scratch, plan.metaOffset());
        for (Step step : plan.steps()) {
            try {
                launch(step, r);
            } catch (RuntimeException e) {
                throw new SegmentExecutionException(step.node(), step.op(), "segment " + segmentIndex + ": node %"
                        + step.node() + " " + step.op() + " on the GPU: " + e.getMessage(), e);
            }
        }
    }

    private record Resolver(List<CUdeviceptr> inputs, List<CUdeviceptr> outputs, CUdeviceptr scratch,
            long metaOffset) {
        CUdeviceptr of(Buf b) {
            return switch (b) {
                case null -> null;
                case Buf.In in -> inputs.get(in.index());
                case Buf.Out out -> outputs.get(out.index());
                case Buf.Scratch s -> scratch.withByteOffset(s.byteOffset());
            };
        }

        CUdeviceptr meta(long offset) {
            return scratch.withByteOffset(metaOffset + offset);
        }
    }

    private static int grid(long n) {
        return (int) Math.max(1, Math.min((n + BLOCK - 1) / BLOCK, MAX_GRID));
    }

    private static int rowGrid(long rows) {
        return (int) Math.max(1, Math.min(rows, MAX_ROW_GRID));
    }

    /** Threads per row block: a multiple of 32 that the row's length can keep busy. */
    private static int rowThreads(int n) {
        return n >= 1024 ? 512 : n >= 256 ? 256 : n >= 64 ? 64 : 32;
    }

    private void launch(Step step, Resolver r) {
        switch (step) {
            case Step.Unary s -> {
                if (s.n() > 0) {
                    cuda.launch("seg_unary", grid(s.n()), 1, BLOCK, 0, r.of(s.x()), r.of(s.y()), s.n(), s.fn(), s.p0(),
                            s.p1());
                }
            }
            case Step.Binary s -> {
                if (s.n() > 0) {
                    cuda.launch("seg_binary", grid(s.n()), 1, BLOCK, 0, r.of(s.a()), r.of(s.b()), r.of(s.y()), s.n(),
                            s.fn(), r.meta(s.metaOffset()), s.rank());
                }
            }
            case Step.Gather s -> {
                if (s.n() > 0) {
                    cuda.launch("seg_gather", grid(s.n()), 1, BLOCK, 0, r.of(s.x()), r.of(s.y()), s.n(),
                            r.meta(s.metaOffset()), s.rank());
                }
            }
            case Step.CopyRows s -> {
                long n = s.rows() * s.cols();
                if (n > 0) {
                    cuda.launch("seg_copy_rows", grid(n), 1, BLOCK, 0, r.of(s.x()), s.xOff(), s.xStride(), r.of(s.y()),
                            s.yOff(), s.yStride(), s.rows(), s.cols());
                }
            }
            case Step.Fill s -> {
                if (s.n() > 0) {
                    cuda.launch("seg_fill", grid(s.n()), 1, BLOCK, 0, r.of(s.y()), s.n(), s.value());
                }
            }
            case Step.CausalMask s -> {
                long n = (long) s.queries() * s.keys();
                if (n > 0) {
                    cuda.launch("seg_causal_mask", grid(n), 1, BLOCK, 0, r.of(s.y()), s.queries(), s.keys(),
                            s.window());
                }
            }
            case Step.Reduce s -> {
                long outputs = s.outer() * s.inner();
                if (outputs == 0) {
                    return;
                }
                if (s.inner() == 1) {
                    cuda.launch("seg_reduce_rows", rowGrid(s.outer()), 1, rowThreads(s.n()), 0, r.of(s.x()),
                            r.of(s.y()), s.outer(), s.n(), s.fn());
                } else {
                    cuda.launch("seg_reduce_strided", grid(outputs), 1, BLOCK, 0, r.of(s.x()), r.of(s.y()), s.outer(),
                            s.n(), s.inner(), s.fn());
                }
            }
            case Step.SumPartial s -> cuda.launch("seg_sum_partial", s.blocks(), 1, BLOCK, 0, r.of(s.x()),
                    r.of(s.partial()), s.n());
            case Step.Softmax s -> {
                if (s.rows() > 0) {
                    cuda.launch("seg_softmax", rowGrid(s.rows()), 1, rowThreads(s.n()), 0, r.of(s.x()), r.of(s.mask()),
                            r.of(s.y()), s.rows(), s.n(), s.scale(), s.softCap());
                }
            }
            case Step.Norm s -> {
                if (s.rows() > 0) {
                    cuda.launch("seg_norm", rowGrid(s.rows()), 1, rowThreads(s.n()), 0, r.of(s.x()), r.of(s.y()),
                            s.rows(), s.n(), s.eps(), s.layer() ? 1 : 0);
                }
            }
            case Step.MatMul s -> {
                if ((long) s.batch() * s.m() * s.n() > 0) {
                    cuda.launch3("seg_matmul", (s.n() + 63) / 64, (s.m() + 63) / 64, s.batch(), 256, 0, r.of(s.a()),
                            r.of(s.b()), r.of(s.y()), s.m(), s.n(), s.k(), s.transposeB() ? 1 : 0,
                            r.meta(s.metaOffset()));
                }
            }
            case Step.Copy s -> {
                if (s.bytes() > 0) {
                    cuda.copyAsync(r.of(s.x()), r.of(s.y()), s.bytes());
                }
            }
        }
    }
}
