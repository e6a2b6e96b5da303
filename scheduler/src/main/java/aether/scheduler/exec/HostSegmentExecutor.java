package aether.scheduler.exec;

import aether.device.spi.HostSegmentRunner;
import aether.device.spi.SegmentExecutionException;
import aether.runtime.ir.DType;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.TensorType;
import aether.runtime.protocol.SegmentSpec;
import aether.runtime.protocol.WorkerCapabilities;
import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.compile.CompiledGraph;
import aether.scheduler.compile.Compiler;
import aether.scheduler.compile.Program;
import java.lang.foreign.MemorySegment;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * How the CPU device runs a segment: f32 segments (with weights in any block type read by matmul) go through the
 * {@link Compiler} into a {@link CompiledGraph} — fused kernels over one preallocated arena — that is cached per segment
 * graph and replayed, so a repeated step compiles once; anything the compiled path does not support (other dtypes,
 * gather/rope/attention ops) runs node by node on the {@link ReferenceExecutor}. Both give the reference's results.
 *
 * <p>Failures name the node: the reference path knows which op threw; a compiled run that throws is re-run on the
 * reference path to find it. Thread-safe: each cached graph is used by one thread at a time (a small pool per graph).
 */
public final class HostSegmentExecutor implements HostSegmentRunner {

    /** Segment graphs whose compiled form is kept; beyond this, a new graph is compiled, run once and dropped. */
    static final int MAX_CACHED_GRAPHS = 256;

    private final Compiler compiler;
    private final ReferenceExecutor reference = new ReferenceExecutor();
    private final Map<OpGraph, Prepared> byEquality = new ConcurrentHashMap<>();
    private final Map<Same, Prepared> byIdentity = new ConcurrentHashMap<>();
    private final java.util.concurrent.atomic.AtomicLong compiledRuns = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong referenceRuns = new java.util.concurrent.atomic.AtomicLong();

    public HostSegmentExecutor() {
        this(Compiler.standard());
    }

    public HostSegmentExecutor(Compiler compiler) {
        this.compiler = compiler;
    }

    /** Value types this executor computes. */
    public static Set<GgmlType> dtypes() {
        return EnumSet.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.F64, GgmlType.I32);
    }

    /** Weight block types it reads (every type with a codec). */
    public static Set<GgmlType> quantTypes() {
        Set<GgmlType> types = EnumSet.noneOf(GgmlType.class);
        for (GgmlType t : GgmlType.values()) {
            if (t.blockSize() > 1 && BlockCodecs.find(t).isPresent()) {
                types.add(t);
            }
        }
        return types;
    }

    /** Op kinds it runs: all of them (the reference path covers what the compiled path does not). */
    public static Set<String> ops() {
        return WorkerCapabilities.allOpKinds();
    }

    /** What {@link #run} needs to know about one segment graph, worked out once per graph. */
    private static final class Prepared {
        final List<Integer> inputNodes;
        final boolean f32;
        final boolean weights;
        final boolean cached;
        final ConcurrentLinkedQueue<CompiledGraph> pool = new ConcurrentLinkedQueue<>();
        volatile boolean compilable = true;

        Prepared(OpGraph g, boolean cached) {
            List<Integer> inputs = new java.util.ArrayList<>();
            boolean allF32 = true;
            boolean anyWeight = false;
            for (Node n : g.nodes()) {
                boolean weight = n.op() instanceof Op.Input && n.dtype().isQuantized();
                anyWeight |= weight;
                allF32 &= weight || n.dtype().equals(DType.F32);
                if (n.op() instanceof Op.Input) {
                    inputs.add(n.id());
                }
            }
            this.inputNodes = List.copyOf(inputs);
            this.f32 = allF32;
            this.weights = anyWeight;
            this.cached = cached;
        }
    }

    /** A graph by identity: the scheduler replays cached plans, so a repeated step sends the very same graph. */
    private record Same(OpGraph graph) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Same s && s.graph == graph;
        }

        @Override
        public int hashCode() {
            return System.identityHashCode(graph);
        }
    }

    private Prepared prepare(OpGraph g) {
        Same same = new Same(g);
        Prepared p = byIdentity.get(same);
        if (p != null) {
            return p;
        }
        // equal graphs (a segment that crossed nodes arrives as a new object) share their compiled graphs
        p = byEquality.get(g);
        if (p == null) {
            if (byEquality.size() >= MAX_CACHED_GRAPHS) {
                return new Prepared(g, false);
            }
            p = byEquality.computeIfAbsent(g, k -> new Prepared(k, true));
        }
        if (byIdentity.size() >= MAX_CACHED_GRAPHS) {
            byIdentity.clear();
        }
        byIdentity.put(same, p);
        return p;
    }

    @Override
    public void run(SegmentSpec segment, List<MemorySegment> inputs, List<MemorySegment> outputs) {
        OpGraph g = segment.graph();
        Prepared p = prepare(g);
        List<Integer> inputNodes = p.inputNodes;
        if (inputs.size() != inputNodes.size() || outputs.size() != g.outputs().size()) {
            throw new SegmentExecutionException(-1, "", "segment " + segment.index() + ": " + inputs.size()
                    + " inputs and " + outputs.size() + " outputs given (expected: " + inputNodes.size() + " and "
                    + g.outputs().size() + ")", null);
        }
        if (p.f32 && p.compilable) {
            CompiledGraph cg = take(p, g, inputs);
            if (cg != null) {
                boolean ok = false;
                try {
                    runCompiled(cg, g, inputNodes, inputs, outputs);
                    ok = true;
                } catch (RuntimeException e) {
                    // fall through: the reference run names the failing node (or succeeds: then its outputs stand)
                } finally {
                    give(p, cg, ok);
                }
                if (ok) {
                    compiledRuns.incrementAndGet();
                    return;
                }
            }
        }
        referenceRuns.incrementAndGet();
        runReference(segment, inputNodes, inputs, outputs);
    }

    /** Segments run through a compiled graph so far. */
    public long compiledRuns() {
        return compiledRuns.get();
    }

    /** Segments run node by node on the reference executor so far (unsupported ops or dtypes, or a failure). */
    public long referenceRuns() {
        return referenceRuns.get();
    }

    /** A compiled graph for {@code g}: from the pool, or compiled now; null when the compiler rejects the graph. */
    private CompiledGraph take(Prepared p, OpGraph g, List<MemorySegment> inputs) {
        if (!p.weights) {
            CompiledGraph cg = p.pool.poll();
            if (cg != null) {
                return cg;
            }
        }
        Map<Integer, TensorValue> constants = new HashMap<>();
        for (int i = 0; i < p.inputNodes.size(); i++) {
            TensorType type = g.node(p.inputNodes.get(i)).type();
            if (type.dtype().isQuantized()) {
                constants.put(p.inputNodes.get(i), StorageFormat.decode(inputs.get(i), type));
            }
        }
        try {
            return compiler.compile(new Program(g, constants));
        } catch (IllegalArgumentException | IllegalStateException e) {
            p.compilable = false;
            return null;
        }
    }

    /** Keeps {@code cg} for the next run of its graph, or frees it (weights differ per job; failed runs; no room). */
    private static void give(Prepared p, CompiledGraph cg, boolean reusable) {
        if (!reusable || p.weights || !p.cached) {
            cg.close();
            return;
        }
        p.pool.offer(cg);
    }

    private static void runCompiled(CompiledGraph cg, OpGraph g, List<Integer> inputNodes,
            List<MemorySegment> inputs, List<MemorySegment> outputs) {
        for (int i = 0; i < inputNodes.size(); i++) {
            int id = inputNodes.get(i);
            if (g.node(id).dtype().isQuantized()) {
                continue;   // a weight: bound as a compile-time constant, read in place
            }
            MemorySegment dst = cg.input(id);   // null when the passes found the input unused
            if (dst != null) {
                MemorySegment.copy(inputs.get(i), 0, dst, 0, dst.byteSize());
            }
        }
        cg.run();
        for (int i = 0; i < outputs.size(); i++) {
            MemorySegment dst = outputs.get(i);
            MemorySegment.copy(cg.output(i), 0, dst, 0, dst.byteSize());
        }
    }

    private void runReference(SegmentSpec segment, List<Integer> inputNodes, List<MemorySegment> inputs,
            List<MemorySegment> outputs) {
        OpGraph g = segment.graph();
        int n = g.size();
        int[] lastUse = new int[n];
        for (Node node : g.nodes()) {
            for (int in : node.inputs()) {
                lastUse[in] = Math.max(lastUse[in], node.id());
            }
        }
        for (int o : g.outputs()) {
            lastUse[o] = Integer.MAX_VALUE;
        }
        TensorValue[] values = new TensorValue[n];
        int nextInput = 0;
        for (Node node : g.nodes()) {
            try {
                if (node.op() instanceof Op.Input) {
                    values[node.id()] = StorageFormat.decode(inputs.get(nextInput++), node.type());
                    continue;
                }
                OpGraph.Builder b = new OpGraph.Builder();
                Map<Integer, TensorValue> bound = new HashMap<>();
                int[] operands = new int[node.inputs().size()];
                for (int k = 0; k < operands.length; k++) {
                    int in = node.input(k);
                    operands[k] = b.add(new Op.Input("in" + k, g.node(in).type()));
                    bound.put(operands[k], values[in]);
                }
                int id = b.add(node.op(), operands);
                values[node.id()] = reference.executeNow(b.build(List.of(id)), bound).getFirst();
            } catch (RuntimeException e) {
                throw new SegmentExecutionException(node.id(), node.op().name(), "segment " + segment.index()
                        + ": node %" + node.id() + " " + node.op().name() + " " + node.type() + ": "
                        + e.getMessage(), e);
            }
            for (int in : node.inputs()) {
                if (lastUse[in] == node.id()) {
                    values[in] = null;
                }
            }
        }
        List<Integer> outs = g.outputs();
        for (int i = 0; i < outs.size(); i++) {
            if (!(values[outs.get(i)] instanceof HostTensor h)) {
                throw new SegmentExecutionException(outs.get(i), g.node(outs.get(i)).op().name(), "segment "
                        + segment.index() + ": output %" + outs.get(i) + " is a weight, not a computed value", null);
            }
            StorageFormat.encode(h, outputs.get(i));
        }
    }
}
