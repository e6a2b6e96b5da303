/**
 * Operator fusion: a {@link aether.scheduler.fusion.FusionPlanner} partitions an {@link aether.runtime.ir.OpGraph} into
 * {@link aether.scheduler.fusion.FusionGroup}s (elementwise chains with broadcast operands, matmul + bias + activation
 * epilogues, rms_norm × weight, mask + softmax prologues), asking a {@link aether.scheduler.fusion.CostModel} (bytes
 * moved, per-dispatch overhead, per-element work including recomputation of broadcast operands) whether each absorption
 * pays; every decision is kept in the {@link aether.scheduler.fusion.FusionPlan} for dumps. This package plans only; it
 * depends on the IR and holds no tensor data. Execution of the plan lives in {@code aether.scheduler.compile}.
 */
package aether.scheduler.fusion;
