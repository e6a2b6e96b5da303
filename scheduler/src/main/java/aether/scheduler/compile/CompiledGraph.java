package aether.scheduler.compile;

import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.Shape;
import aether.scheduler.exec.HostTensor;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.exec.WeightRows;
import aether.scheduler.exec.WeightTensor;
import aether.scheduler.fusion.FusionGroup;
import aether.scheduler.fusion.FusionPlan;
import aether.scheduler.memory.ArenaPlan;
import aether.scheduler.memory.ArenaPlanner;
import aether.scheduler.memory.Liveness;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * An f32 graph ready to run again and again: every intermediate value has a fixed offset in one arena allocated at
 * compile time ({@link ArenaPlan}), inputs and constants have their own segments, and each fusion group is one
 * preallocated {@link Steps.Step}. {@link #run()} allocates nothing: bind inputs with {@link #set}, run, read {@link
 * #output}. Results are bit-identical to the {@link aether.scheduler.exec.ReferenceExecutor} on the same graph.
 *
 * <p>Supported ops: elementwise (unary, binary with broadcasting, scale, pow, clamp, f32 cast), matmul (dense, both
 * layouts, broadcast batches; or a constant {@link WeightTensor} right operand in f16, bf16 or any block type, read row
 * by row and never expanded), softmax (mask, scale, soft-cap), rms_norm, layer_norm, sum/mean/max, reshape (a view),
 * permute, expand, slice, pad, concat, and the leaves full and causal_mask. Anything else, or any non-f32 value, is
 * rejected at compile time with the node named; such graphs run on the reference executor.
 *
 * <p>Not thread-safe: one arena means one run at a time. {@link #close()} frees the arena and all segments.
 */
public final class CompiledGraph implements AutoCloseable {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    /** Elements per block of an elementwise step: registers stay in L1. */
    static final int BLOCK = 512;

    private final Program program;
    private final Rewrite rewrite;
    private final List<PassManager.PassRecord> passLog;
    private final FusionPlan fusion;
    private final ArenaPlan arenaPlan;
    private final Arena arena;
    private final MemorySegment memory;
    private final MemorySegment[] storage;
    private final WeightRows[] weights;
    private final Steps.Step[] steps;
    private final MemorySegment[] outputs;
    private final int sourceSize;

    CompiledGraph(Program program, Rewrite rewrite, List<PassManager.PassRecord> passLog, FusionPlan fusion) {
        OpGraph g = program.graph();
        checkSupported(program);
        this.program = program;
        this.rewrite = rewrite;
        this.sourceSize = rewrite.mapping().length;
        this.passLog = List.copyOf(passLog);
        this.fusion = fusion;
        Liveness liveness = Liveness.analyze(g, fusion);
        this.arenaPlan = ArenaPlanner.plan(liveness, g.size());
        this.arena = Arena.ofShared();
        this.memory = arena.allocate(Math.max(arenaPlan.peakBytes(), 1), ArenaPlanner.ALIGNMENT);
        this.storage = new MemorySegment[g.size()];
        this.weights = new WeightRows[g.size()];
        for (Node n : g.nodes()) {
            if (program.constants().get(n.id()) instanceof WeightTensor w) {
                weights[n.id()] = w.rows();
                continue;
            }
            storage[n.id()] = switch (n.op()) {
                case Op.Input in -> leaf(program.constants().get(n.id()), n);
                case Op.Full f -> filled(n, f.value());
                case Op.CausalMask m -> causalMask(m);
                case Op.Reshape r -> storage[liveness.storage(n.id())];
                default -> arenaPlan.offset(n.id()) >= 0
                        ? memory.asSlice(arenaPlan.offset(n.id()), arenaPlan.bytes(n.id()))
                        : null;   // fused away: never stored
            };
        }
        List<Steps.Step> built = new ArrayList<>();
        for (FusionGroup group : fusion.groups()) {
            Steps.Step s = step(g, group);
            if (s != null) {
                built.add(s);
            }
        }
        this.steps = built.toArray(new Steps.Step[0]);
        this.outputs = new MemorySegment[g.outputs().size()];
        for (int i = 0; i < outputs.length; i++) {
            outputs[i] = storage[g.outputs().get(i)];
        }
    }

    private static void checkSupported(Program program) {
        OpGraph g = program.graph();
        for (Node n : g.nodes()) {
            if (program.constants().get(n.id()) instanceof WeightTensor) {
                for (Node reader : g.nodes()) {
                    for (int i = 0; i < reader.inputs().size(); i++) {
                        if (reader.input(i) == n.id() && !(reader.op() instanceof Op.MatMul && i == 1)) {
                            throw new IllegalArgumentException("compiled graph: weight %" + n.id() + " " + n.type()
                                    + " is read by %" + reader.id() + " " + reader.op().name() + " (expected: only as"
                                    + " the right operand of matmul)");
                        }
                    }
                }
                continue;
            }
            boolean ok = switch (n.op()) {
                case Op.Input i -> true;
                case Op.Full f -> true;
                case Op.CausalMask m -> true;
                case Op.Unary u -> true;
                case Op.Pow p -> true;
                case Op.Clamp c -> true;
                case Op.Scale s -> true;
                case Op.Binary b -> true;
                case Op.Cast c -> true;
                case Op.MatMul m -> true;
                case Op.Softmax s -> true;
                case Op.RmsNorm r -> true;
                case Op.LayerNorm l -> true;
                case Op.Reduce r -> true;
                case Op.Reshape r -> true;
                case Op.Permute p -> true;
                case Op.Expand e -> true;
                case Op.Slice s -> true;
                case Op.Pad p -> true;
                case Op.Concat c -> true;
                default -> false;
            };
            if (!ok) {
                throw new IllegalArgumentException("compiled graph: node %" + n.id() + " " + n.op().name() + " "
                        + n.type() + " is not supported (expected: elementwise, matmul, softmax, norms, reductions"
                        + " or layout ops; run this graph on the ReferenceExecutor)");
            }
            if (!n.dtype().equals(DType.F32)) {
                throw new IllegalArgumentException("compiled graph: node %" + n.id() + " " + n.op().name() + " is "
                        + n.type() + " (expected: f32 values only)");
            }
            if (n.op() instanceof Op.Input && program.constants().containsKey(n.id())
                    && !(program.constants().get(n.id()) instanceof HostTensor)) {
                throw new IllegalArgumentException("compiled graph: constant %" + n.id() + " is a "
                        + program.constants().get(n.id()).getClass().getSimpleName() + " (expected: a HostTensor or"
                        + " a WeightTensor read by matmul)");
            }
        }
    }

    private MemorySegment leaf(TensorValue constant, Node n) {
        MemorySegment s = arena.allocate(n.shape().size() * Float.BYTES, ArenaPlanner.ALIGNMENT);
        if (constant instanceof HostTensor h) {
            for (int i = 0; i < h.size(); i++) {
                s.setAtIndex(F32, i, (float) h.get(i));
            }
        }
        return s;
    }

    private MemorySegment filled(Node n, double value) {
        MemorySegment s = arena.allocate(n.shape().size() * Float.BYTES, ArenaPlanner.ALIGNMENT);
        for (long i = 0; i < n.shape().size(); i++) {
            s.setAtIndex(F32, i, (float) value);
        }
        return s;
    }

    private MemorySegment causalMask(Op.CausalMask m) {
        MemorySegment s = arena.allocate((long) m.queries() * m.keys() * Float.BYTES, ArenaPlanner.ALIGNMENT);
        for (int i = 0; i < m.queries(); i++) {
            int pos = i + m.keys() - m.queries();
            for (int j = 0; j < m.keys(); j++) {
                boolean visible = j <= pos && (m.window() == 0 || pos - j < m.window());
                s.setAtIndex(F32, (long) i * m.keys() + j, visible ? 0f : Float.NEGATIVE_INFINITY);
            }
        }
        return s;
    }

    private MemorySegment storageOf(int node) {
        MemorySegment s = storage[node];
        if (s == null) {
            throw new IllegalStateException("compiled graph: %" + node + " has no storage (fused away)");
        }
        return s;
    }

    private Steps.Step step(OpGraph g, FusionGroup group) {
        Node root = g.node(group.root());
        if (group.anchor() < 0) {
            ElementwiseProgram p = new ElementwiseProgram(g, group.epilogue(), group.root(), root.shape(), BLOCK,
                    this::storageOf, -1);
            return new Steps.Elementwise(p, storageOf(group.root()), root.shape().size(), BLOCK);
        }
        Node anchor = g.node(group.anchor());
        ElementwiseProgram epilogue = group.epilogue().isEmpty() ? null
                : new ElementwiseProgram(g, group.epilogue(), group.root(), root.shape(), anchor.shape().dim(-1),
                        this::storageOf, group.anchor());
        MemorySegment out = storageOf(group.root());
        return switch (anchor.op()) {
            case Op.MatMul m when weights[anchor.input(1)] != null -> new Steps.MatMulRows(
                    storageOf(anchor.input(0)), g.node(anchor.input(0)).shape(), weights[anchor.input(1)],
                    m.transposeB(), out, anchor.shape(), epilogue);
            case Op.MatMul m -> new Steps.MatMul(storageOf(anchor.input(0)), g.node(anchor.input(0)).shape(),
                    storageOf(anchor.input(1)), g.node(anchor.input(1)).shape(), m.transposeB(), out, anchor.shape(),
                    epilogue);
            case Op.Softmax s -> rowOp(g, group, anchor, epilogue, out);
            case Op.RmsNorm r -> rowOp(g, group, anchor, epilogue, out);
            case Op.LayerNorm l -> rowOp(g, group, anchor, epilogue, out);
            case Op.Reshape r -> null;   // a view of its operand's storage
            case Op.Permute p -> new Steps.Permute(storageOf(anchor.input(0)), g.node(anchor.input(0)).shape(),
                    p.axes(), out);
            case Op.Expand e -> new Steps.Expand(new Gather(storageOf(anchor.input(0)), g.node(anchor.input(0)).shape(),
                    anchor.shape()), out, anchor.shape().size(), BLOCK);
            case Op.Reduce r -> new Steps.Reduce(r.fn(), storageOf(anchor.input(0)), g.node(anchor.input(0)).shape(),
                    r.axis(), out);
            case Op.Slice s -> {
                Shape xs = g.node(anchor.input(0)).shape();
                long inner = xs.sub(s.axis() + 1, xs.rank()).size();
                yield new Steps.Chunks(storageOf(anchor.input(0)), out, xs.sub(0, s.axis()).size(),
                        (long) (s.end() - s.start()) * inner, s.start() * inner, xs.dim(s.axis()) * inner, 0,
                        (long) (s.end() - s.start()) * inner, false);
            }
            case Op.Pad p -> {
                Shape xs = g.node(anchor.input(0)).shape();
                long inner = xs.sub(p.axis() + 1, xs.rank()).size();
                yield new Steps.Chunks(storageOf(anchor.input(0)), out, xs.sub(0, p.axis()).size(),
                        xs.dim(p.axis()) * inner, 0, xs.dim(p.axis()) * inner, p.before() * inner,
                        anchor.shape().dim(p.axis()) * inner, true);
            }
            case Op.Concat c -> concat(g, anchor, c.axis(), out);
            default -> throw new IllegalStateException("compiled graph: no kernel for " + anchor.op());
        };
    }

    private Steps.Step rowOp(OpGraph g, FusionGroup group, Node anchor, ElementwiseProgram epilogue,
            MemorySegment out) {
        int cols = anchor.shape().dim(-1);
        ElementwiseProgram prologue = group.prologue().isEmpty() ? null
                : new ElementwiseProgram(g, group.prologue(), anchor.input(0), anchor.shape(), cols, this::storageOf,
                        -1);
        Gather input = prologue != null ? null
                : new Gather(storageOf(anchor.input(0)), g.node(anchor.input(0)).shape(), anchor.shape());
        Gather mask = anchor.inputs().size() > 1
                ? new Gather(storageOf(anchor.input(1)), g.node(anchor.input(1)).shape(), anchor.shape())
                : null;
        return new Steps.RowOp(anchor.op(), prologue, input, mask, epilogue, out, anchor.shape());
    }

    private Steps.Step concat(OpGraph g, Node anchor, int axis, MemorySegment out) {
        Shape os = anchor.shape();
        long inner = os.sub(axis + 1, os.rank()).size();
        long outer = os.sub(0, axis).size();
        long outRow = os.dim(axis) * inner;
        Steps.Step[] parts = new Steps.Step[anchor.inputs().size()];
        long at = 0;
        for (int i = 0; i < parts.length; i++) {
            long chunk = g.node(anchor.input(i)).shape().dim(axis) * inner;
            parts[i] = new Steps.Chunks(storageOf(anchor.input(i)), out, outer, chunk, 0, chunk, at, outRow, false);
            at += chunk;
        }
        return () -> {
            for (Steps.Step p : parts) {
                p.run();
            }
        };
    }

    // ---- running ---------------------------------------------------------------------------------------------------

    /** Runs every step once. Allocates nothing. */
    public void run() {
        for (Steps.Step s : steps) {
            s.run();
        }
    }

    /**
     * Binds run-time input {@code inputId} (a node id of the program given to {@link Compiler#compile}) by copying
     * {@code values} into its segment. An input the passes found unused is checked and ignored.
     */
    public void set(int inputId, float[] values) {
        int id = compiledId(inputId);
        long expected = id >= 0 ? program.graph().node(id).shape().size() : -1;
        if (id >= 0 && (!(program.graph().node(id).op() instanceof Op.Input) || program.isConstant(id))) {
            throw new IllegalArgumentException("compiled graph: %" + inputId + " is not a run-time input");
        }
        if (id >= 0 && values.length != expected) {
            throw new IllegalArgumentException("compiled graph: input %" + inputId + " needs " + expected
                    + " floats, found " + values.length);
        }
        if (id >= 0) {
            MemorySegment.copy(values, 0, storage[id], F32, 0, values.length);
        }
    }

    /** The segment of run-time input {@code inputId}, to write directly; null when the passes dropped it. */
    public MemorySegment input(int inputId) {
        int id = compiledId(inputId);
        return id < 0 ? null : storage[id];
    }

    private int compiledId(int inputId) {
        if (inputId < 0 || inputId >= sourceSize) {
            throw new IllegalArgumentException("compiled graph: no node %" + inputId + " in the source program");
        }
        return rewrite.map(inputId);
    }

    /** Output {@code i}'s values after {@link #run()}; a view, overwritten by the next run. */
    public MemorySegment output(int i) {
        return outputs[i];
    }

    /** A copy of output {@code i} (allocates; for tests and tools). */
    public float[] outputFloats(int i) {
        return outputs[i].toArray(F32);
    }

    public int outputCount() {
        return outputs.length;
    }

    // ---- introspection ----------------------------------------------------------------------------------------------

    /** The program after the passes. */
    public Program program() {
        return program;
    }

    public FusionPlan fusionPlan() {
        return fusion;
    }

    public ArenaPlan arenaPlan() {
        return arenaPlan;
    }

    public List<PassManager.PassRecord> passLog() {
        return passLog;
    }

    /** Steps one run dispatches (reshapes are free views and dispatch nothing). */
    public int dispatches() {
        return steps.length;
    }

    /** Pass log, then one line per node with its fusion group and arena offset, then decisions and arena totals. */
    public String dump() {
        StringBuilder sb = new StringBuilder("passes:\n");
        for (PassManager.PassRecord r : passLog) {
            sb.append("  ").append(r).append('\n');
        }
        return sb.append(GraphDump.text(program, fusion, arenaPlan)).toString();
    }

    public String dot() {
        return GraphDump.dot(program, fusion);
    }

    /** Ids of the final program that the fusion plan keeps out of memory. */
    Set<Integer> fusedAway() {
        Set<Integer> s = new HashSet<>();
        for (int i = 0; i < storage.length; i++) {
            if (storage[i] == null) {
                s.add(i);
            }
        }
        return s;
    }

    @Override
    public void close() {
        arena.close();
    }
}
