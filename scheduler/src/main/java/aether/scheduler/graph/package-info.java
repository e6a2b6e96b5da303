/**
 * The Graph API: a deferred DAG of tensor operations built by chaining ({@code x.matmul(w).softmax(-1).sumAll()}), with
 * NumPy broadcasting and shape/dtype inference at build time (a broken rule is an IllegalArgumentException naming the
 * op, the operand types and the rule). A {@link aether.scheduler.graph.Graph} owns its nodes (the IR of {@code
 * aether.runtime.ir}) and the values bound to its leaves; nothing runs until a value is asked for through a {@link
 * aether.scheduler.exec.GraphExecutor}. {@link aether.scheduler.graph.Tensor#backward()} appends the gradient graph (see
 * {@code aether.scheduler.autograd}), so gradients are ordinary nodes that can be optimized and executed like any other.
 */
package aether.scheduler.graph;
