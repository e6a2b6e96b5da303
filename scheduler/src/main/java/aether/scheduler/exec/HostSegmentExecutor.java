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
    private final Map<OpGraph, ConcurrentLinkedQueue<CompiledGraph>> compiled = new ConcurrentHashMap<>();
    private final Set<OpGraph> notCompilable = ConcurrentHashMap.newKeySet();

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

    @Override
    public void run(SegmentSpec segment, List<MemorySegment> inputs, List<MemorySegment> outputs) {
        OpGraph g = segment.graph();
        List<Integer> inputNodes = segment.inputNodes();
        if (inputs.size() != inputNodes.size() || outputs.size() != g.outputs().size()) {
            throw new SegmentExecutionException(-1, "", "segment " + segment.index() + ": " + inputs.size()
                    + " inputs and " + outputs.size() + " outputs given (expected: " + inputNodes.size() + " and "
                    + g.outputs().size() + ")", null);
        }
        if (!notCompilable.contains(g) && allF32(g)) {
            CompiledGraph cg = take(g, inputNodes, inputs);
            if (cg != null) {
                boolean ok = false;
                try {
                    runCompiled(cg, g, inputNodes, inputs, outputs);
                    ok = true;
                } catch (RuntimeException e) {
                    // fall through: the reference run names the failing node (or succeeds: then its outputs stand)
                } finally {
                    give(g, cg, inputNodes, ok);
                }
                if (ok) {
                    return;
                }
            }
        }
        runReference(segment, inputNodes, inputs, outputs);
    }

    private static boolean allF32(OpGraph g) {
        for (Node n : g.nodes()) {
            boolean weight = n.op() instanceof Op.Input && n.dtype().isQuantized();
            if (!weight && !n.dtype().equals(DType.F32)) {
                return false;
            }
        }
        return true;
    }

    private static boolean hasWeights(OpGraph g, List<Integer> inputNodes) {
        for (int id : inputNodes) {
            if (g.node(id).dtype().isQuantized()) {
                return true;
            }
        }
        return false;
    }

    /** A compiled graph for {@code g}: from the pool, or compiled now; null when the compiler rejects the graph. */
    private CompiledGraph take(OpGraph g, List<Integer> inputNodes, List<MemorySegment> inputs) {
        boolean weights = hasWeights(g, inputNodes);
        if (!weights) {
            ConcurrentLinkedQueue<CompiledGraph> pool = compiled.get(g);
            CompiledGraph cg = pool == null ? null : pool.poll();
            if (cg != null) {
                return cg;
            }
        }
        Map<Integer, TensorValue> constants = new HashMap<>();
        for (int i = 0; i < inputNodes.size(); i++) {
            TensorType type = g.node(inputNodes.get(i)).type();
            if (type.dtype().isQuantized()) {
                constants.put(inputNodes.get(i), StorageFormat.decode(inputs.get(i), type));
            }
        }
        try {
            return compiler.compile(new Program(g, constants));
        } catch (IllegalArgumentException | IllegalStateException e) {
            notCompilable.add(g);
            return null;
        }
    }

    private void give(OpGraph g, CompiledGraph cg, List<Integer> inputNodes, boolean reusable) {
        if (!reusable || hasWeights(g, inputNodes)
                || (!compiled.containsKey(g) && compiled.size() >= MAX_CACHED_GRAPHS)) {
            cg.close();
            return;
        }
        compiled.computeIfAbsent(g, k -> new ConcurrentLinkedQueue<>()).offer(cg);
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
