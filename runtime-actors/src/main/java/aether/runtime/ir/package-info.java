/**
 * The op IR: one graph of tensor operations for compute jobs and model forward passes alike. An {@link
 * aether.runtime.ir.OpGraph} is an immutable list of {@link aether.runtime.ir.Node}s in topological order; a node is an
 * {@link aether.runtime.ir.Op} (a sealed interface of records carrying only attributes), the ids of its inputs and its
 * inferred {@link aether.runtime.ir.TensorType}. Everything here is plain data (records, enums, lists) so graphs can
 * travel in cluster messages and compiler passes can rewrite them as {@code OpGraph -> OpGraph}. Shapes use NumPy order
 * (outermost first, last dimension contiguous); {@link aether.runtime.ir.TypeInference} checks every operator's rule at
 * build time. This package holds no tensor bytes and must not depend on device, scheduler or actor code.
 */
package aether.runtime.ir;
