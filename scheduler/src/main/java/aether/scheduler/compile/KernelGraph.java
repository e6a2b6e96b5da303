package aether.scheduler.compile;

import aether.device.cpu.KernelPool;
import aether.device.cpu.kernel.Matmul;
import aether.runtime.bench.StartupTrace;
import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.exec.WeightRows;
import aether.scheduler.exec.WeightTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * A graph compiled for speed on the CPU: every intermediate value is f32 (I32 for indices) at a fixed offset of one
 * arena planned at compile time, weights stay in their storage format and are multiplied in place by device-workers'
 * {@link Matmul} on a {@link KernelPool}, and KV caches are segments the caller owns and binds at compile time, updated
 * in place by {@code kv_store}. {@link #run()} allocates nothing: write the run-time inputs into {@link #input}
 * segments, run, read {@link #output}. This is the inference counterpart of {@link CompiledGraph}: float
 * accumulation in SIMD order instead of the reference executor's double, so results agree with it to float rounding
 * rather than bit for bit.
 *
 * <p>Values of a declared f16/bf16 dtype (casts in ggml-style activation graphs) are kept as f32 holding the rounded
 * value. Supported ops: elementwise (unary, binary with broadcasting, scale, pow, clamp, cast), sum/mean/max,
 * reshape (a view), slice, rms_norm, layer_norm, rope, get_rows (weight or f32 table), matmul with a weight as right
 * operand ({@code transposeB}, any {@link Matmul#SUPPORTED} type; other types row by row), kv_store and
 * paged_attention; the leaves input and full. Anything else is rejected at compile time with the node named.
 *
 * <p>Not thread-safe: one run at a time (the arena, the kernels' scratch and the pool are shared by all runs).
 * {@link #close()} frees the arena; external segments stay the caller's.
 */
public final class KernelGraph implements AutoCloseable {

    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final int ALIGN = 64;

    private final Program program;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment[] storage;
    private final KernelSteps.Step[] steps;
    private final boolean[] isMatmul;
    private final MemorySegment[] outputs;
    private final long arenaBytes;
    private boolean profiling;
    private long matmulNanos;
    private long otherNanos;
    private long attentionNanos;     // the attention steps' share of otherNanos

    private KernelGraph(Program program, Matmul matmul, Matmul serialMatmul, PackedWeightCache packed, KernelPool pool,
            Map<Integer, MemorySegment> external) {
        this.program = program;
        OpGraph g = program.graph();
        int n = g.size();
        int[] owner = new int[n];
        WeightRows[] weights = new WeightRows[n];
        for (Node node : g.nodes()) {
            int id = node.id();
            owner[id] = id;
            switch (node.op()) {
                case Op.Reshape r -> owner[id] = owner[node.input(0)];
                case Op.KvStore k -> {
                    if (!(g.node(node.input(0)).op() instanceof Op.Input) || !external.containsKey(node.input(0))) {
                        throw unsupported(node, "kv_store's cache must be a run-time input bound to an external"
                                + " segment");
                    }
                    owner[id] = owner[node.input(0)];
                }
                case Op.Input in -> {
                    if (program.constants().get(id) instanceof WeightTensor w) {
                        weights[id] = w.rows();
                    }
                }
                default -> { }
            }
            check(node, program, weights, external);
        }
        this.storage = new MemorySegment[n];
        this.arenaBytes = plan(g, owner, weights, external);
        List<KernelSteps.Step> built = new ArrayList<>();
        List<Boolean> matmuls = new ArrayList<>();
        StartupTrace.mark("kernel graph planned");
        KernelSteps k = new KernelSteps(g, storage, weights, matmul, serialMatmul, packed, pool);
        for (Node node : g.nodes()) {
            KernelSteps.Step s = k.step(node);
            if (s != null) {
                built.add(s);
                matmuls.add(node.op() instanceof Op.MatMul);
            }
        }
        this.steps = built.toArray(new KernelSteps.Step[0]);
        this.isMatmul = new boolean[steps.length];
        for (int i = 0; i < isMatmul.length; i++) {
            isMatmul[i] = matmuls.get(i);
        }
        this.outputs = new MemorySegment[g.outputs().size()];
        for (int i = 0; i < outputs.length; i++) {
            outputs[i] = storage[g.outputs().get(i)];
        }
    }

    /**
     * Compiles {@code program} as it is (no passes: inference graphs come pruned and fused ops are kernels here).
     *
     * @param matmul   the matmul kernels (their scratch is per pool; share one instance between the graphs of one
     *                 model, never between threads)
     * @param pool     the threads matmul and attention run on
     * @param external segments for run-time inputs the caller owns (KV caches), by program node id; each holds the
     *                 input's elements in its dtype's storage format (f32, f16 or q8_0 rows)
     * @throws IllegalArgumentException naming the node, for an op or operand form this executor does not run
     */
    public static KernelGraph compile(Program program, Matmul matmul, KernelPool pool,
            Map<Integer, MemorySegment> external) {
        return new KernelGraph(program, matmul, null, null, pool, external);
    }

    /**
     * {@link #compile(Program, Matmul, KernelPool, Map)}, with small matmuls (weight bytes times tokens under
     * {@value KernelSteps#PARALLEL_MIN_WEIGHT_BYTES}) on {@code serialMatmul}, a Matmul over a one-thread pool: below
     * that, waking the pool's threads costs more than the work (and far more on a loaded machine, where a woken
     * thread may wait a scheduler quantum for a core).
     */
    public static KernelGraph compile(Program program, Matmul matmul, Matmul serialMatmul, KernelPool pool,
            Map<Integer, MemorySegment> external) {
        return new KernelGraph(program, matmul, serialMatmul, null, pool, external);
    }

    /**
     * {@link #compile(Program, Matmul, Matmul, KernelPool, Map)}, reading weights in the layouts {@code packed}
     * prepares (Q4_0 repacked for the int16 decode kernel; prepared once, shared by every graph of the model).
     */
    public static KernelGraph compile(Program program, Matmul matmul, Matmul serialMatmul, PackedWeightCache packed,
            KernelPool pool, Map<Integer, MemorySegment> external) {
        return new KernelGraph(program, matmul, serialMatmul, packed, pool, external);
    }

    private static void check(Node node, Program program, WeightRows[] weights, Map<Integer, MemorySegment> ext) {
        for (int i = 0; i < node.inputs().size(); i++) {
            int in = node.input(i);
            if (weights[in] != null && !((node.op() instanceof Op.MatMul m && m.transposeB() && i == 1)
                    || (node.op() instanceof Op.GetRows && i == 0))) {
                throw unsupported(node, "weight %" + in + " is read other than as matmul_t's right operand or"
                        + " get_rows' table");
            }
        }
        boolean ok = switch (node.op()) {
            case Op.Input in -> {
                TensorValue c = program.constants().get(node.id());
                if (ext.containsKey(node.id())) {
                    MemorySegment s = ext.get(node.id());
                    long need = node.dtype().ggml().bytesFor(node.shape().size());
                    if (s.byteSize() < need) {
                        throw unsupported(node, "external segment of " + s.byteSize() + " bytes, needs " + need);
                    }
                    yield c == null;
                }
                yield c == null ? !node.dtype().isQuantized() : c instanceof HostTensor || c instanceof WeightTensor;
            }
            case Op.Full f -> true;
            case Op.Unary u -> true;
            case Op.Pow p -> true;
            case Op.Clamp c -> true;
            case Op.Scale s -> true;
            case Op.Binary b -> true;
            case Op.Cast c -> true;
            case Op.Reduce r -> true;
            case Op.Reshape r -> true;
            case Op.Slice s -> true;
            case Op.RmsNorm r -> true;
            case Op.LayerNorm l -> true;
            case Op.Rope r -> true;
            case Op.GetRows gr -> true;
            case Op.MatMul m -> m.transposeB() && weights[node.input(1)] != null;
            case Op.KvStore k -> true;
            case Op.PagedAttention a -> true;
            default -> false;
        };
        if (!ok) {
            throw unsupported(node, "expected elementwise, reductions, reshape/slice, norms, rope, get_rows,"
                    + " matmul_t with a weight, kv_store or paged_attention");
        }
    }

    static IllegalArgumentException unsupported(Node node, String why) {
        return new IllegalArgumentException("kernel graph: node %" + node.id() + " " + node.op().name() + " "
                + node.type() + " is not supported: " + why);
    }

    /** Places every stored value: leaves get their own segments, computed values share the arena by lifetime. */
    private long plan(OpGraph g, int[] owner, WeightRows[] weights, Map<Integer, MemorySegment> external) {
        int n = g.size();
        int[] last = new int[n];
        Arrays.fill(last, -1);
        for (Node node : g.nodes()) {
            for (int in : node.inputs()) {
                last[owner[in]] = Math.max(last[owner[in]], node.id());
            }
        }
        for (int o : g.outputs()) {
            last[owner[o]] = n;
        }
        List<long[]> lifetimes = new ArrayList<>();   // {node, bytes, first, last}
        for (Node node : g.nodes()) {
            int id = node.id();
            if (owner[id] != id || weights[id] != null) {
                continue;
            }
            long bytes = Math.multiplyExact(node.shape().size(), 4L);
            switch (node.op()) {
                case Op.Input in -> storage[id] = external.containsKey(id) ? external.get(id) : leaf(node);
                case Op.Full f -> {
                    storage[id] = arena.allocate(Math.max(bytes, 4), ALIGN);
                    storage[id].asSlice(0, bytes).elements(F32).forEach(s -> s.set(F32, 0, (float) f.value()));
                }
                default -> lifetimes.add(new long[] {id, Math.max(bytes, 4), id, Math.max(id, last[id])});
            }
        }
        lifetimes.sort(Comparator.comparingLong((long[] l) -> -l[1]).thenComparingLong(l -> l[0]));
        long[] offset = new long[n];
        List<long[]> placed = new ArrayList<>();   // {start, end, first, last}
        long peak = 0;
        for (long[] l : lifetimes) {
            List<long[]> busy = new ArrayList<>();
            for (long[] p : placed) {
                if (p[2] <= l[3] && l[2] <= p[3]) {
                    busy.add(p);
                }
            }
            busy.sort(Comparator.comparingLong(p -> p[0]));
            long at = 0;
            for (long[] p : busy) {
                if (at + l[1] <= p[0]) {
                    break;
                }
                at = Math.max(at, (p[1] + ALIGN - 1) & -ALIGN);
            }
            offset[(int) l[0]] = at;
            placed.add(new long[] {at, at + l[1], l[2], l[3]});
            peak = Math.max(peak, at + l[1]);
        }
        MemorySegment memory = arena.allocate(Math.max(peak, 1), ALIGN);
        for (long[] l : lifetimes) {
            int id = (int) l[0];
            storage[id] = memory.asSlice(offset[id], l[1]);
        }
        for (int id = 0; id < n; id++) {
            if (owner[id] != id) {
                storage[id] = storage[owner[id]];
            }
        }
        return peak;
    }

    private MemorySegment leaf(Node node) {
        long count = node.shape().size();
        MemorySegment s = arena.allocate(Math.max(count * 4, 4), ALIGN);
        if (program.constants().get(node.id()) instanceof HostTensor h) {
            boolean ints = node.dtype().equals(DType.I32);
            for (int i = 0; i < count; i++) {
                if (ints) {
                    s.setAtIndex(I32, i, (int) h.get(i));
                } else {
                    s.setAtIndex(F32, i, (float) h.get(i));
                }
            }
        }
        return s;
    }

    // ---- running ---------------------------------------------------------------------------------------------------

    /** Runs every step once, in node order. Allocates nothing. */
    public void run() {
        if (!profiling) {
            for (KernelSteps.Step s : steps) {
                s.run();
            }
            return;
        }
        for (int i = 0; i < steps.length; i++) {
            long t0 = System.nanoTime();
            steps[i].run();
            long dt = System.nanoTime() - t0;
            if (isMatmul[i]) {
                matmulNanos += dt;
            } else {
                otherNanos += dt;
                if (steps[i] instanceof KernelSteps.PagedAttention) {
                    attentionNanos += dt;
                }
            }
        }
    }

    /**
     * The segment of run-time input {@code id} (a program node id), to write directly: f32 or I32 (little-endian
     * ints) elements, row-major.
     */
    public MemorySegment input(int id) {
        if (id < 0 || id >= storage.length || !(program.graph().node(id).op() instanceof Op.Input)
                || program.isConstant(id)) {
            throw new IllegalArgumentException("kernel graph: %" + id + " is not a run-time input");
        }
        return storage[id];
    }

    /** Output {@code i} after {@link #run()}: a view of f32 values, overwritten by the next run. */
    public MemorySegment output(int i) {
        return outputs[i];
    }

    public Program program() {
        return program;
    }

    /** Steps one run dispatches. */
    public int dispatches() {
        return steps.length;
    }

    /** Bytes of the planned arena (all intermediate values). */
    public long arenaBytes() {
        return arenaBytes;
    }

    /** Times every step of later runs (two {@code nanoTime} calls per step) into {@link #kernelNanos}. */
    public void setProfiling(boolean on) {
        this.profiling = on;
    }

    /**
     * Nanoseconds spent in matmul steps ({@code [0]}), in every other step ({@code [1]}) and, of those, in paged
     * attention ({@code [2]}) while profiling.
     */
    public long[] kernelNanos() {
        return new long[] {matmulNanos, otherNanos, attentionNanos};
    }

    public void resetProfile() {
        matmulNanos = 0;
        otherNanos = 0;
        attentionNanos = 0;
    }

    @Override
    public void close() {
        arena.close();
    }
}
