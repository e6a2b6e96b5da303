/**
 * The graph compiler. A {@link aether.scheduler.compile.Program} (an IR graph plus its constant data) goes through
 * {@link aether.scheduler.compile.Pass}es run by a {@link aether.scheduler.compile.PassManager} ({@link
 * aether.scheduler.compile.Simplify}, {@link aether.scheduler.compile.DeadCodeElimination}, {@link
 * aether.scheduler.compile.CommonSubexpressions}, {@link aether.scheduler.compile.ConstantFolding}, {@link
 * aether.scheduler.compile.WeightLayout}), each a pure {@code Program -> Program} with an id mapping; then fusion
 * planning and arena planning ({@link aether.scheduler.compile.Compiler}), and {@link
 * aether.scheduler.compile.CompiledGraph} runs the result repeatedly in one preallocated arena without allocating,
 * bit-identical to the reference executor. {@link aether.scheduler.compile.KernelGraph} is the inference counterpart:
 * f32 activations in an arena planned by lifetime, weights multiplied in place by device-workers' kernels on a {@code
 * KernelPool}, KV caches updated in place, float accumulation (close to the reference, not bit-identical). {@link aether.scheduler.compile.FusedExecutor} puts all of it behind the
 * {@code GraphExecutor} seam; {@link aether.scheduler.compile.GraphDump} prints any stage as text or Graphviz. Depends
 * on the IR, the reference executor (constant folding) and the fusion and memory planners; nothing here depends on
 * actors.
 */
package aether.scheduler.compile;
